import fs, { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareMigrationFiles, MigrationFile, StreamRamBlock, type CompareReport } from '../../src/index.js';
import { getFixture, REPO_ROOT, type Fixture } from '../support/fixtures.js';
import { runBin, runCli } from '../support/cli.js';
import { pagesOf, writeMappedRam, type SyntheticBlock } from '../support/synthetic.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'mram-compare-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SAMPLE = path.join(REPO_ROOT, 'samples/guest-8m.mig');
let seq = 0;

async function synthetic(blocks: SyntheticBlock[], devices: { idstr: string; payload: Uint8Array }[] = []): Promise<string> {
  const p = path.join(tmp, `s${seq++}.mig`);
  await writeMappedRam(p, blocks, devices);
  return p;
}

async function compare(a: string, b: string, opts: Parameters<typeof compareMigrationFiles>[2] = {}): Promise<CompareReport> {
  const fa = await MigrationFile.open(a);
  const fb = await MigrationFile.open(b);
  try {
    return await compareMigrationFiles(fa, fb, opts);
  } finally {
    await fa.close();
    await fb.close();
  }
}

/** A mapped-ram copy of `fx` whose `mem` block is QEMU's own RAM image (other blocks as mram reads them). */
async function fromRamImage(fx: Fixture): Promise<string> {
  const f = await MigrationFile.open(fx.file);
  try {
    const blocks: SyntheticBlock[] = [];
    for (const b of f.blocks) blocks.push({ id: b.id, data: b.id === 'mem' ? new Uint8Array(readFileSync(fx.ramImage)) : await b.read(0, b.usedLength) });
    return await synthetic(blocks);
  } finally {
    await f.close();
  }
}

describe('compare: the same guest RAM in every encoding is identical', () => {
  let mr: Fixture, stream: Fixture, libvirt: Fixture, zpdNone: Fixture, mfd: Fixture, streamLive: Fixture;
  beforeAll(async () => {
    [mr, stream, libvirt, zpdNone, mfd, streamLive] = await Promise.all(
      ['mr-32m', 'stream-32m', 'libvirt-mr-32m', 'mr-zpd-none-32m', 'mr-mfd-32m', 'stream-live-32m'].map((n) => getFixture(n)),
    );
  });

  it('mapped-ram against its plain-stream twin, libvirt-wrapped, multifd and zero-page-detection=none saves', async () => {
    for (const [a, b] of [
      [mr, stream],
      [stream, mr],
      [libvirt, stream],
      [zpdNone, stream],
      [zpdNone, mr],
      [mfd, libvirt],
    ] as const) {
      const r = await compare(a.file, b.file, { devices: false });
      expect(r.identical, `${a.name} vs ${b.name}`).toBe(true);
      expect(r.firstDifference).toBeNull();
      const mem = r.blocks.find((x) => x.id === 'mem')!;
      expect(mem).toMatchObject({ equal: 8192, differing: 0, onlyInA: 0, onlyInB: 0, lengthA: 32 << 20, lengthB: 32 << 20, complete: true });
    }
  });

  it('--offset-a/--offset-b: a save at an offset after a prefix compares equal to the same guest at 0', async () => {
    const off = await getFixture('mr-off-32m');
    expect((await runCli(['compare', off.file, mr.file])).code).toBe(2);
    const r = await runCli(['compare', '--offset-a', String(off.meta.offset), off.file, mr.file]);
    expect(r.code, r.stderr).toBe(0);
    expect((await runCli(['compare', '--offset-b', String(off.meta.offset), stream.file, off.file])).code).toBe(0);
  });

  it('a live stream save equals QEMU RAM image at the end: the last record of a re-sent page wins', async () => {
    const f = await MigrationFile.open(streamLive.file);
    const mem = f.block('mem') as StreamRamBlock;
    expect(mem.resentPages).toBeGreaterThan(0);
    await f.close();
    const image = await fromRamImage(streamLive);
    const r = await compare(streamLive.file, image);
    expect(r.identical).toBe(true);
    const cli = await runCli(['compare', image, streamLive.file]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toBe('Guest RAM is identical.\n');
  });

  it('a changed page of the RAM image is the first difference, with its exact offset', async () => {
    const ram = new Uint8Array(readFileSync(mr.ramImage));
    // A page with data in the save, and a zero page that gets data.
    const nonZero = ram.findIndex((v, i) => i >= 1000 * 4096 && v !== 0);
    const page = Math.floor(nonZero / 4096);
    ram[page * 4096 + 17] ^= 0x5a;
    let zeroPage = 2000;
    while (ram.subarray(zeroPage * 4096, (zeroPage + 1) * 4096).some((v) => v !== 0)) zeroPage++;
    ram[zeroPage * 4096 + 4095] = 1;
    const changed = await synthetic([{ id: 'mem', data: ram }]);
    const r = await compare(stream.file, changed);
    expect(r.identical).toBe(false);
    expect(r.firstDifference).toEqual({ block: 'mem', offset: page * 4096 });
    const mem = r.blocks.find((x) => x.id === 'mem')!;
    expect(mem).toMatchObject({ differing: 1, onlyInA: 0, onlyInB: 1, equal: 8190 });
    // Blocks only in the stream are reported, and the JSON says all of it.
    const cli = await runCli(['compare', '--json', stream.file, changed]);
    expect(cli.code).toBe(1);
    const doc = JSON.parse(cli.stdout);
    expect(doc.identical).toBe(false);
    expect(doc.firstDifference).toEqual({ block: 'mem', offset: page * 4096 });
    const onlyA = doc.blocks.filter((b: { lengthB: number | null }) => b.lengthB === null).map((b: { id: string }) => b.id);
    expect(onlyA.sort()).toEqual(r.blocks.filter((b) => b.id !== 'mem').map((b) => b.id).sort());
  });
});

describe('compare: blocks, lengths, counts and cost', () => {
  it('counts equal, differing, only-in-A and only-in-B pages; reports blocks in one file and different lengths', async () => {
    // x: page 1 differs, page 2 only in A, page 3 only in B, page 4 zero on both sides; B's x is 2 pages longer, one with data.
    const a = await synthetic([
      { id: 'x', data: pagesOf(6, (p) => [1, 2, 3, 0, 0, 6][p]!) },
      { id: 'onlyA', data: pagesOf(4, (p) => (p === 2 ? 9 : 0)) },
    ]);
    const b = await synthetic([
      { id: 'x', data: pagesOf(8, (p) => [1, 7, 0, 4, 0, 6, 0, 8][p]!) },
      { id: 'onlyB', data: pagesOf(2, () => 0) },
    ]);
    const r = await compare(a, b);
    expect(r.identical).toBe(false);
    expect(r.firstDifference).toEqual({ block: 'x', offset: 4096 });
    expect(r.blocks).toEqual([
      { id: 'x', lengthA: 6 * 4096, lengthB: 8 * 4096, pageSize: 4096, equal: 3, differing: 1, onlyInA: 1, onlyInB: 2, firstDifference: 4096, complete: true, ignored: null },
      { id: 'onlyA', lengthA: 4 * 4096, lengthB: null, pageSize: 4096, equal: 0, differing: 0, onlyInA: 1, onlyInB: 0, firstDifference: 2 * 4096, complete: true, ignored: null },
      { id: 'onlyB', lengthA: null, lengthB: 2 * 4096, pageSize: 4096, equal: 0, differing: 0, onlyInA: 0, onlyInB: 0, firstDifference: 0, complete: true, ignored: null },
    ]);
    const stat = await runCli(['compare', '--stat', a, b]);
    expect(stat.code).toBe(1);
    expect(stat.stdout).toMatch(/^block "onlyA" is only in A \(16\.0 KiB\)$/m);
    expect(stat.stdout).toMatch(/^block "onlyB" is only in B/m);
    expect(stat.stdout).toMatch(/^block "x" has 24576 bytes in A and 32768 in B$/m);
    expect(stat.stdout).toMatch(/^x\s+3\s+1\s+1\s+2$/m);
    expect(stat.stdout).toMatch(/^Content mismatch in block "x" at offset 0x1000 \(page 1\)!$/m);
  });

  it('without --stat it stops at the first difference', async () => {
    const a = await synthetic([{ id: 'x', data: pagesOf(4096, (p) => (p % 3 ? 1 : 0)) }, { id: 'y', data: pagesOf(8, () => 1) }]);
    const b = await synthetic([{ id: 'x', data: pagesOf(4096, (p) => (p % 3 ? 2 : 0)) }, { id: 'y', data: pagesOf(8, () => 1) }]);
    const r = await compare(a, b, { stopAtFirst: true, chunkBytes: 1 << 20 });
    expect(r.firstDifference).toEqual({ block: 'x', offset: 4096 });
    expect(r.blocks[0]!.complete).toBe(false);
    expect(r.blocks[1]!.complete).toBe(false);
    expect(r.bytesRead.a).toBeLessThan(4096 * 4096);
  });

  it('two mapped-ram files: only spans of present pages are read; a block with none costs nothing', async () => {
    const run = (p: number) => (p >= 300 && p < 340 ? (p & 0xff) + 1 : 0);
    const a = await synthetic([{ id: 'empty', data: new Uint8Array(64 << 20) }, { id: 'data', data: pagesOf(16384, run) }]);
    const r = await compare(a, a);
    expect(r.identical).toBe(true);
    expect(r.bytesRead).toEqual({ a: 40 * 4096, b: 40 * 4096 });
    expect(r.blocks.map((b) => b.equal)).toEqual([16384, 16384]);
    const none = await synthetic([{ id: 'empty', data: new Uint8Array(64 << 20) }]);
    expect((await compare(none, none)).bytesRead).toEqual({ a: 0, b: 0 });
  });

  it('--devices compares device sections by idstr and instance', async () => {
    const ram = [{ id: 'x', data: pagesOf(2, () => 1) }];
    const a = await synthetic(ram, [{ idstr: 'timer', payload: new Uint8Array([1, 2, 3]) }, { idstr: 'cpu', payload: new Uint8Array([4]) }]);
    const b = await synthetic(ram, [{ idstr: 'timer', payload: new Uint8Array([1, 2, 4]) }, { idstr: 'apic', payload: new Uint8Array([4]) }]);
    const plain = await compare(a, b);
    expect(plain.identical).toBe(true);
    expect(plain.devices).toBeNull();
    const r = await compare(a, b, { devices: true });
    expect(r.identical).toBe(false);
    expect(r.firstDifference).toBeNull();
    expect(r.devices).toEqual([
      { idstr: 'timer', instanceId: 0, status: 'different' },
      { idstr: 'cpu', instanceId: 0, status: 'only-in-a' },
      { idstr: 'apic', instanceId: 0, status: 'only-in-b' },
    ]);
    const cli = await runCli(['compare', '--devices', a, b]);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('device "timer" instance 0: different');
    expect(cli.stdout).toContain('Guest RAM is identical; device state differs.');
    expect((await runCli(['compare', '--devices', a, a])).code).toBe(0);
  });
});

describe('compare: exit codes (0 identical, 1 different, 2 error)', () => {
  it('0 and 1 from the installed entry point', async () => {
    expect(runBin(['compare', SAMPLE, SAMPLE]).code).toBe(0);
    const other = await synthetic([{ id: 'mem', data: pagesOf(2048, () => 0) }]);
    const r = runBin(['compare', SAMPLE, other]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Content mismatch in block "mem" at offset 0x/);
  });

  it('2 for a missing file, a file that is not a migration file, and bad usage; one line, no stack trace', async () => {
    const junk = path.join(tmp, 'junk.bin');
    writeFileSync(junk, Buffer.alloc(8192, 7));
    for (const args of [['compare', SAMPLE, path.join(tmp, 'missing.mig')], ['compare', junk, SAMPLE], ['compare', SAMPLE], ['compare', '--nope', SAMPLE, SAMPLE]]) {
      const r = runBin(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/^mram compare: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(runBin(['compare', junk, SAMPLE]).stderr).toMatch(/junk\.bin: at offset 0 /);
    // A stream cut short: its pages after the cut are unknown, so nothing is claimed about them.
    const stream = await getFixture('stream-32m');
    const cut = path.join(tmp, 'cut.mig');
    fs.copyFileSync(stream.file, cut);
    const f = await MigrationFile.open(stream.file);
    const boundary = f.sections.find((x) => x.type === 'full')!.offset;
    await f.close();
    for (const size of [boundary, boundary - 1000]) {
      fs.truncateSync(cut, size);
      const r = runBin(['compare', cut, stream.file]);
      expect(r.code).toBe(2);
      // Cut at a record boundary or inside a record: either way no partial comparison is claimed.
      expect(r.stderr).toMatch(/^mram compare: .*cut\.mig: (incomplete \(|at offset \d+ )/);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });
});
