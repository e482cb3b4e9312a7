// compare against saves QEMU makes in the test: one guest saved in both encodings, one page changed
// in its memory-backend-file, a paused and a live save of a dirtying guest.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DIRTY_RANGE, writeGuestRam } from '../support/guest-ram.js';
import { describeQemu, killAllGuests, makeTempDir, saveGuest, startGuest, startRunningGuest } from '../support/qemu.js';
import { runCli } from '../support/cli.js';

const MEM_MIB = 32;
const PAGE = 4096;

describeQemu('compare: saves QEMU makes now', () => {
  const dir = makeTempDir('mram-compare-qemu-');
  const shm = makeTempDir('mram-compare-ram-', true);
  afterAll(async () => {
    await killAllGuests();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(shm, { recursive: true, force: true });
  });

  async function save(ramPath: string, out: string, mappedRam: boolean): Promise<string> {
    const guest = await startGuest({ memMiB: MEM_MIB, ramPath });
    try {
      await saveGuest({ guest, out, mappedRam });
    } finally {
      await guest.kill();
    }
    return out;
  }

  it('the same guest as mapped-ram and as a stream is identical; one changed page of its RAM file is exactly the difference', async () => {
    const ramPath = path.join(shm, 'ram');
    writeGuestRam(ramPath, MEM_MIB, 7);
    const mr = await save(ramPath, path.join(dir, 'a-mr.mig'), true);
    const stream = await save(ramPath, path.join(dir, 'a-stream.mig'), false);
    const same = await runCli(['compare', '--stat', mr, stream]);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    expect(same.stdout).toMatch(/^mem\s+8192\s+0\s+0\s+0$/m);

    // Change one byte of a page that holds data, in the file behind the guest's RAM.
    const ram = fs.readFileSync(ramPath);
    let page = 4321;
    while (ram.subarray(page * PAGE, (page + 1) * PAGE).every((v) => v === 0)) page++;
    const fd = fs.openSync(ramPath, 'r+');
    fs.writeSync(fd, Buffer.from([ram[page * PAGE + 100]! ^ 0xff]), 0, 1, page * PAGE + 100); // a non-zero page stays non-zero
    fs.closeSync(fd);
    const changed = await save(ramPath, path.join(dir, 'b-mr.mig'), true);

    for (const a of [mr, stream]) {
      const r = await runCli(['compare', '--json', a, changed]);
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc.identical).toBe(false);
      expect(doc.firstDifference).toEqual({ block: 'mem', offset: page * PAGE });
      const mem = doc.blocks.find((b: { id: string }) => b.id === 'mem');
      expect(mem).toMatchObject({ equal: 8191, differing: 1, onlyInA: 0, onlyInB: 0 });
      for (const b of doc.blocks.filter((x: { id: string }) => x.id !== 'mem')) expect(b).toMatchObject({ differing: 0, onlyInA: 0, onlyInB: 0 });
    }
    const human = await runCli(['compare', stream, changed]);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe(`Content mismatch in block "mem" at offset 0x${(page * PAGE).toString(16)} (page ${page})!\n`);
  });

  it('a paused save and a later live save of a dirtying guest differ, only in the pages it dirties', async () => {
    const ramPath = path.join(shm, 'dirty');
    const guest = await startRunningGuest({ memMiB: MEM_MIB, ramPath });
    const paused = path.join(dir, 'paused.mig');
    const live = path.join(dir, 'live.mig');
    try {
      await guest.qmp.execute('stop');
      await saveGuest({ guest, out: paused, mappedRam: true });
      await guest.qmp.execute('cont');
      await saveGuest({ guest, out: live, mappedRam: false, running: true, minDirtySyncs: 3 });
    } finally {
      await guest.kill();
    }
    const r = await runCli(['compare', '--json', paused, live]);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.firstDifference.block).toBe('mem');
    expect(doc.firstDifference.offset).toBeGreaterThanOrEqual(DIRTY_RANGE.start);
    expect(doc.firstDifference.offset).toBeLessThan(DIRTY_RANGE.end);
    const mem = doc.blocks.find((b: { id: string }) => b.id === 'mem');
    const dirtyPages = (DIRTY_RANGE.end - DIRTY_RANGE.start) / PAGE;
    expect(mem.differing + mem.onlyInA + mem.onlyInB).toBeGreaterThan(0);
    expect(mem.differing + mem.onlyInA + mem.onlyInB).toBeLessThanOrEqual(dirtyPages);
    expect(mem.equal).toBeGreaterThanOrEqual(8192 - dirtyPages);
  });
});
