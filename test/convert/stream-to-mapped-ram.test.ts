import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { MigrationFile } from '../../src/reader/migration-file.js';
import type { MappedRamBlock } from '../../src/reader/ram-block.js';
import { getFixture } from '../support/fixtures.js';
import { writeGuestRam } from '../support/guest-ram.js';
import { describeQemu, loadGuest, makeTempDir, saveGuest, startGuest, startRunningGuest } from '../support/qemu.js';
import { convertSuite, CLI, firstDifferentPage, runCli, waitForFile } from './support.js';

const MEM = 32;
const scratch = convertSuite();

describeQemu('mram convert: plain stream → mapped-ram', () => {
  it('QEMU loads the converted file with mapped-ram on; RAM identical; block offsets equal to QEMU\'s own mapped-ram file', async () => {
    const fx = await getFixture('stream-32m');
    const out = path.join(scratch(), 'from-stream.mram');
    const r = runCli(['convert', fx.file, out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);

    const ours = await MigrationFile.open(out);
    const qemu = await MigrationFile.open((await getFixture('mr-32m')).file);
    try {
      expect(ours.format).toBe('mapped-ram');
      const offsets = (f: MigrationFile) => (f.blocks as MappedRamBlock[]).map((b) => [b.id, b.entry.entryOffset, b.bitmapOffset, b.pagesOffset]);
      expect(offsets(ours)).toEqual(offsets(qemu));
      expect(ours.vmdesc!.desc.configuration).toEqual(qemu.vmdesc!.desc.configuration);
    } finally {
      await ours.close();
      await qemu.close();
    }

    const { ram } = await loadGuest({ file: out, mappedRam: true, memMiB: MEM });
    expect(firstDifferentPage(ram, fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('turns pages QEMU sent with zero-page-detection=none into holes', async () => {
    const fx = await getFixture('stream-zpd-none-32m');
    const out = path.join(scratch(), 'zpd-none.mram');
    expect(runCli(['convert', fx.file, out]).status).toBe(0);
    const f = await MigrationFile.open(out);
    try {
      const mem = f.block('mem');
      expect(mem.presentPages).toBe(fx.meta.ramNonZeroPages);
      expect(firstDifferentPage(await mem.read(0, mem.usedLength), fs.readFileSync(fx.ramImage))).toBe(-1);
      // Page data is about the non-zero pages, not the whole guest.
      expect(f.allocated).toBeLessThan(mem.usedLength / 4);
    } finally {
      await f.close();
    }
  });

  it('converts a stream piped live from migrate "exec:mram convert - OUT"', async () => {
    const ramPath = path.join(makeTempDir('mram-pipe-', true), 'ram');
    writeGuestRam(ramPath, MEM, 7);
    const out = path.join(scratch(), 'piped.mram');
    const g = await startGuest({ memMiB: MEM, ramPath });
    let source: Buffer;
    try {
      await saveGuest({ guest: g, uri: `exec:node ${CLI} convert - ${out}`, mappedRam: false });
      source = fs.readFileSync(ramPath);
    } finally {
      await g.kill();
      fs.rmSync(path.dirname(ramPath), { recursive: true, force: true });
    }
    await waitForFile(out);
    const { ram } = await loadGuest({ file: out, mappedRam: true, memMiB: MEM });
    expect(firstDifferentPage(ram, source)).toBe(-1);
  });

  it('keeps the last copy of pages re-sent while the guest runs (live save through a pipe)', async () => {
    const out = path.join(scratch(), 'live.mram');
    const g = await startRunningGuest({ memMiB: MEM });
    let source: Buffer;
    let syncs = 0;
    try {
      const res = await saveGuest({ guest: g, uri: `exec:node ${CLI} convert - ${out}`, mappedRam: false, running: true, minDirtySyncs: 4 });
      syncs = res.stats.ram?.['dirty-sync-count'] ?? 0;
      expect(res.runState).toBe('postmigrate');
      source = fs.readFileSync(g.ramPath);
    } finally {
      await g.kill();
    }
    expect(syncs).toBeGreaterThanOrEqual(4);
    await waitForFile(out);
    const { ram } = await loadGuest({ file: out, mappedRam: true, memMiB: MEM });
    expect(firstDifferentPage(ram, source)).toBe(-1);
  });
});
