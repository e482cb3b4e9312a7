// Hostile qcow2 images: each defect gives one line (no stack trace) quickly, with reads and
// allocations bounded by the file; and a fuzz run over real QEMU 11 images' metadata.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qcow2Image } from '../../src/qcow2/index.js';
import { runCli } from '../support/cli.js';
import { getQcow2Fixture } from '../support/qcow2.js';
import { mulberry32 } from '../support/random.js';
import { tempDir } from '../verify/support.js';

const dir = tempDir('mram-qcow2-hostile-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Layout {
  clusterSize: number;
  l1TableOffset: number;
  snapshotsOffset: number;
  /** The snapshot "mr-b": entry offset, L1 offset, its first vmstate L1 entry's offset and that L2 table. */
  entry: number;
  snL1: number;
  vmL1Entry: number;
  l2: number;
  /** The refcount table and its first refcount block (16-bit refcounts). */
  refcountTable: number;
  refcountBlock: number;
}

async function layoutOf(image: string): Promise<Layout> {
  const img = await Qcow2Image.open(image);
  try {
    const sn = img.snapshots.find((s) => s.name === 'mr-b')!;
    const cover = (img.header.clusterSize / 8) * img.header.clusterSize;
    const vmIndex = Math.ceil(Number(sn.diskSize) / cover);
    const vmL1Entry = sn.l1TableOffset + vmIndex * 8;
    const e = Buffer.alloc(8);
    const r = Buffer.alloc(8);
    const fd = fs.openSync(image, 'r');
    fs.readSync(fd, e, 0, 8, vmL1Entry);
    fs.readSync(fd, r, 0, 8, img.header.refcountTableOffset);
    fs.closeSync(fd);
    return {
      clusterSize: img.header.clusterSize,
      l1TableOffset: img.header.l1TableOffset,
      snapshotsOffset: img.header.snapshotsOffset,
      entry: sn.entryOffset,
      snL1: sn.l1TableOffset,
      vmL1Entry,
      l2: Number(e.readBigUInt64BE() & 0x00fffffffffffe00n),
      refcountTable: img.header.refcountTableOffset,
      refcountBlock: Number(r.readBigUInt64BE()),
    };
  } finally {
    await img.close();
  }
}

const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };
const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b; };

describe('hostile qcow2 images', () => {
  let pristine: Buffer;
  let L: Layout;
  beforeAll(async () => {
    const fx = await getQcow2Fixture('snap-v3');
    pristine = fs.readFileSync(fx.image);
    L = await layoutOf(fx.image);
  }, 600_000);

  const cases: Array<{ name: string; patch: (l: Layout) => Array<[number, Buffer]>; expect: RegExp; truncate?: number }> = [
    { name: 'L2 table offset past the end of the file', patch: (l) => [[l.vmL1Entry, u64(0x8000_0000_0000_0000n | (1n << 40n))]], expect: /an L2 table inside the file/ },
    { name: 'L1 entry pointing at its own L1 table', patch: (l) => [[l.vmL1Entry, u64(BigInt(l.snL1 - (l.snL1 % l.clusterSize)))]], expect: /an L2 table apart from the image metadata.*the L1 table of snapshot/ },
    { name: 'L1 entry pointing at the header cluster', patch: (l) => [[l.vmL1Entry, u64(BigInt(l.clusterSize) - 512n)]], expect: /L2 table offset aligned/ },
    { name: 'L2 entry pointing at its own L2 table', patch: (l) => [[l.l2, u64(0x8000_0000_0000_0000n | BigInt(l.l2))]], expect: /a data cluster apart from its L2 table/ },
    { name: 'data cluster past the end of the file', patch: (l) => [[l.l2, u64(1n << 45n)]], expect: /a data cluster inside the file/ },
    // What loadvm refuses before it reads the VM state: it updates the refcount of every cluster the snapshot and the active state use.
    { name: 'refcount block past the end of the file', patch: (l) => [[l.refcountTable, u64(BigInt(l.refcountBlock) + (1n << 32n))]], expect: /a refcount block inside the file/ },
    { name: 'refcount table past the end of the file', patch: () => [[48, u64(1n << 40n)]], expect: /the refcount table \(\d+ bytes at 0x[0-9a-f]+\) inside the file/ },
    { name: 'refcount block offset not cluster-aligned', patch: (l) => [[l.refcountTable, u64(BigInt(l.refcountBlock) + 512n)]], expect: /a refcount block aligned to the cluster size/ },
    { name: 'L2 entry past the VM state pointing past the end of the file', patch: (l) => [[l.l2 + l.clusterSize - 8, u64(1n << 54n)]], expect: /a data cluster inside the file .*loadvm/ },
    { name: 'refcount 0 on the VM state\'s L2 table, which the active L1 names too', patch: (l) => [[l.refcountBlock + 2 * (l.l2 / l.clusterSize), Buffer.alloc(2)], [l.l1TableOffset, u64(BigInt(l.l2))]], expect: /QEMU would free it/ },
    { name: 'snapshot table overlapping the header', patch: () => [[64, u64(0n)]], expect: /the snapshot table after the header cluster/ },
    { name: 'absurd l1_size in the header', patch: () => [[36, u32(0xffffffff)]], expect: /an L1 table of at most 4194304 entries/ },
    { name: 'absurd l1_size in the snapshot', patch: (l) => [[l.entry + 8, u32(0x7fffffff)]], expect: /a snapshot L1 table of at most 4194304 entries/ },
    { name: 'snapshot L1 table larger than the file', patch: (l) => [[l.entry + 8, u32(4000000)]], expect: /the L1 table of snapshot 2 .* inside the file/ },
    { name: 'cluster_bits 63', patch: () => [[20, u32(63)]], expect: /cluster_bits between 9 and 21/ },
    { name: 'cluster_bits 0', patch: () => [[20, u32(0)]], expect: /cluster_bits between 9 and 21/ },
    { name: 'a 2^60-byte virtual disk', patch: (l) => [[24, u64(1n << 60n)], [l.entry + 48, u64(1n << 60n)]], expect: /a snapshot L1 table reaching the vmstate area/ },
    { name: 'encrypted', patch: () => [[32, u32(1)]], expect: /encrypted qcow2 images are not supported/ },
    { name: 'external data file', patch: () => [[72, u64(4n)]], expect: /images with an external data file are not supported/ },
    { name: 'backing file', patch: () => [[8, u64(0x200n)], [16, u32(8)]], expect: /images with a backing file are not supported/ },
    { name: 'unknown incompatible feature', patch: () => [[72, u64(1n << 40n)]], expect: /only known incompatible features/ },
    { name: 'snapshot extra data over QEMU limit', patch: (l) => [[l.entry + 36, u32(1 << 20)]], expect: /at most 1024 bytes of snapshot extra data/ },
    { name: 'version 4', patch: () => [[4, u32(4)]], expect: /qcow2 version 2 or 3/ },
    { name: 'truncated inside the snapshot table', patch: () => [], truncate: -1, expect: /snapshot .* inside the file|the snapshot table .* inside the file/ },
  ];

  for (const c of cases) {
    it(`${c.name}: one line`, async () => {
      const file = path.join(dir, 'hostile.qcow2');
      const b = Buffer.from(pristine);
      for (const [at, bytes] of c.patch(L)) bytes.copy(b, at);
      fs.writeFileSync(file, c.truncate ? b.subarray(0, L.snapshotsOffset + 20) : b);
      const t0 = Date.now();
      for (const args of [['inspect', file], ['verify', file, '--snapshot', 'mr-b', '--digest'], ['extract', file, '--snapshot', '2', '--all', path.join(dir, 'out')]]) {
        const r = await runCli(args);
        const lines = r.stderr.trimEnd().split('\n');
        // inspect lists a snapshot it cannot read with the reason instead of failing.
        if (args[0] === 'inspect' && r.code === 0) {
          expect(r.stdout).toMatch(c.expect);
          continue;
        }
        expect(r.code, `${args[0]}: ${r.stdout}`).not.toBe(0);
        expect(lines, r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(c.expect);
        expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      }
      // Generous: the point is "not a hang", and timings are never asserted tightly.
      expect(Date.now() - t0).toBeLessThan(20_000);
    });
  }

  it('fuzz: random bytes in the header, snapshot table, L1 and L2 tables of real images give a result or one line', async () => {
    const rnd = mulberry32(15);
    const fx = await getQcow2Fixture('snap-v2');
    const base = fs.readFileSync(fx.image);
    const img = await Qcow2Image.open(fx.image);
    const targets: Array<[number, number]> = [[0, 112], [img.header.snapshotsOffset, img.header.snapshotsOffset + 200]];
    for (const sn of img.snapshots) {
      targets.push([sn.l1TableOffset, sn.l1TableOffset + sn.l1Size * 8]);
      // The L2 tables the snapshot's L1 names (their first 512 bytes: the vmstate's first entries).
      for (let i = 0; i < sn.l1Size; i++) {
        const l2 = Number(base.readBigUInt64BE(sn.l1TableOffset + i * 8) & 0x00fffffffffffe00n);
        if (l2) targets.push([l2, l2 + 512]);
      }
    }
    await img.close();
    const file = path.join(dir, 'fuzz.qcow2');
    for (let i = 0; i < 60; i++) {
      const b = Buffer.from(base);
      const n = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < n; k++) {
        const [s, e] = targets[Math.floor(rnd() * targets.length)]!;
        b[s + Math.floor(rnd() * (e - s))] = Math.floor(rnd() * 256);
      }
      fs.writeFileSync(file, b);
      for (const args of [['inspect', file], ['verify', file, '--snapshot', 'mr', '--quick'], ['verify', file, '--snapshot', '1']]) {
        const r = await runCli(args);
        expect(r.stderr, `case ${i} ${args.join(' ')}`).not.toMatch(/internal error|\n\s+at /);
        if (r.code === 1 || r.code === 64) expect(r.stderr.trimEnd().split('\n').length, r.stderr).toBeLessThanOrEqual(1);
      }
    }
  }, 300_000);
});
