// qcow2 snapshots against QEMU at run time: savevm by QEMU 11 (stream and mapped-ram) and QEMU 10
// (stream), conversions loaded back by QEMU 11, compressed vmstate clusters read by loadvm and by mram.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Qcow2Image, verifyFile } from '../../src/index.js';
import { runCli } from '../support/cli.js';
import { describeQemuOn, makeTempDir } from '../support/qemu.js';
import { buildSnapshotImage, craftCompressedSnapshot, expectedRam, loadFile, loadvm, migrateToFile11, QCOW2_FIXTURES, qemuImg, sha256 } from '../support/qcow2.js';

// QEMU 11 sees the host's /tmp only: everything it opens lives here.
const dir = makeTempDir('mram-qcow2-qemu-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const MEM = 32;

async function extractMem(image: string, snapshot: string): Promise<Buffer> {
  const out = path.join(dir, `x-${snapshot}.ram`);
  const r = await runCli(['extract', image, '--snapshot', snapshot, '--block', 'mem', '-o', out, '--force']);
  expect(r.code, r.stderr).toBe(0);
  return fs.readFileSync(out);
}

describeQemuOn(['11'], 'qcow2 snapshots saved by QEMU 11 now', () => {
  it('several snapshots (stream, mapped-ram, one deleted): each extracts to its RAM; conversions load in QEMU with that RAM', async () => {
    const image = path.join(dir, 'live.qcow2');
    const meta = await buildSnapshotImage(QCOW2_FIXTURES['snap-v3']!, image);
    for (const s of meta.snapshots.filter((x) => !x.deleted)) expect((await extractMem(image, s.name)).equals(expectedRam(meta, s.name)), s.name).toBe(true);
    const disk = path.join(dir, 'blank.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', disk, '64M']);
    for (const [snap, to] of [['mr-b', 'stream'], ['mr-b', 'mapped-ram'], ['stream-a', 'mapped-ram'], ['stream-d', 'mapped-ram']] as const) {
      const out = path.join(dir, `${snap}-${to}.mig`);
      const r = await runCli(['convert', image, out, '--snapshot', snap, '--to', to, '--force']);
      expect(r.code, r.stderr).toBe(0);
      const ram = await loadFile(out, to === 'mapped-ram', MEM, disk);
      expect(ram.equals(expectedRam(meta, snap)), `${snap} → ${to} loaded by QEMU 11`).toBe(true);
    }
  });

  for (const compression of ['zlib', 'zstd'] as const) {
    it(`vmstate in ${compression}-compressed clusters: QEMU's loadvm and mram read the same RAM`, async () => {
      const disk = path.join(dir, `src-${compression}.qcow2`);
      qemuImg(['create', '-q', '-f', 'qcow2', disk, '64M']);
      const mig = path.join(dir, `src-${compression}.mig`);
      const saved = await migrateToFile11(mig, disk, 555, true, MEM);
      const image = path.join(dir, `compressed-${compression}.qcow2`);
      await craftCompressedSnapshot(mig, image, { compression, name: 'packed', diskMiB: 64, vmStateSize: 4096 });
      expect(qemuImg(['info', image])).toContain(`compression type: ${compression}`);
      expect((await loadvm(image, 'packed', true, MEM)).equals(saved)).toBe(true);
      expect((await extractMem(image, 'packed')).equals(saved)).toBe(true);
      const v = await verifyFile(image, { snapshot: 'packed', digest: true });
      expect(v.errors).toEqual([]);
      expect(v.digests.mem).toBe(sha256(saved));
      if (compression === 'zstd') {
        // Without the zstd program: one line naming it, nothing written.
        const saved = process.env.PATH;
        process.env.PATH = '/nonexistent';
        try {
          const out = path.join(dir, 'nozstd.ram');
          const r = await runCli(['extract', image, '--snapshot', 'packed', '--block', 'mem', '-o', out]);
          expect(r.code).toBe(1);
          expect(r.stderr).toMatch(/^mram extract: .*install the zstd program \(not found on PATH\)\n$/);
          expect(fs.existsSync(out)).toBe(false);
        } finally {
          process.env.PATH = saved;
        }
      }
    });
  }
});

describeQemuOn(['10'], 'qcow2 snapshots saved by QEMU 10 (host)', () => {
  it('a stream vmstate extracts to the RAM QEMU 10 saved', async () => {
    const image = path.join(dir, 'q10.qcow2');
    const meta = await buildSnapshotImage({ name: 'q10', gen: 10, options: 'compat=1.1', saves: [{ name: 'one', seed: 901, mappedRam: false }, { name: 'two', seed: 902, mappedRam: false }] }, image);
    expect(meta.qemu).toMatch(/version 10\./);
    for (const s of meta.snapshots) expect((await extractMem(image, s.name)).equals(expectedRam(meta, s.name)), s.name).toBe(true);
  });
});

/** Patches loadvm refuses before it reads the VM state (it updates the refcount of every cluster in use). */
async function refcountDamage(file: string, snapshot: string): Promise<Array<{ name: string; patch: Array<[number, Buffer]>; expect: RegExp | 'loads' }>> {
  const img = await Qcow2Image.open(file);
  const image = fs.readFileSync(file);
  const cs = img.header.clusterSize;
  const reftable = img.header.refcountTableOffset;
  const refblock = Number(image.readBigUInt64BE(reftable));
  // The snapshot L1's last entry is the VM state's first L2 table.
  const sn = img.snapshots.find((s) => s.name === snapshot)!;
  const l2 = Number(image.readBigUInt64BE(sn.l1TableOffset + (sn.l1Size - 1) * 8) & 0x00fffffffffffe00n);
  const activeL1 = img.header.l1TableOffset;
  await img.close();
  const u64 = (v: bigint) => Buffer.from(v.toString(16).padStart(16, '0'), 'hex');
  const zeroRefcount: [number, Buffer] = [refblock + 2 * (l2 / cs), Buffer.alloc(2)];
  return [
    { name: 'refcount block past the end of the file', patch: [[reftable, u64(BigInt(refblock) + (1n << 32n))]], expect: /a refcount block inside the file/ },
    { name: 'an unused L2 entry of the VM state pointing past the end of the file', patch: [[l2 + cs - 8, u64(1n << 54n)]], expect: /a data cluster inside the file/ },
    // loadvm raises it to one for the snapshot before anything lowers it.
    { name: "the VM state's L2 table with refcount 0", patch: [zeroRefcount], expect: 'loads' },
    // Raised to one, lowered to zero: QEMU frees the table, and the VM state it mapped reads as zeros.
    { name: 'refcount 0 on an L2 table the active state names too', patch: [zeroRefcount, [activeL1, u64(BigInt(l2))]], expect: /its refcount would reach zero and QEMU would free it/ },
  ];
}

for (const gen of [10, 11] as const) {
  describeQemuOn([String(gen) as '10' | '11'], `qcow2 refcounts loadvm needs, judged by QEMU ${gen}`, () => {
    it("damage QEMU's loadvm refuses is refused by every command, and the pristine image loads the same RAM in both", async () => {
      const image = path.join(dir, `refcounts-${gen}.qcow2`);
      const meta = await buildSnapshotImage({ name: `refcounts-${gen}`, gen, options: 'compat=1.1', saves: [{ name: 'snap', seed: 77, mappedRam: false }] }, image);
      const pristine = fs.readFileSync(image);
      const probe = path.join(dir, `refcounts-${gen}-probe.qcow2`);
      fs.writeFileSync(probe, pristine);
      expect((await loadvm(probe, 'snap', false, MEM, gen)).equals(expectedRam(meta, 'snap'))).toBe(true);
      expect((await extractMem(image, 'snap')).equals(expectedRam(meta, 'snap'))).toBe(true);
      for (const d of await refcountDamage(image, 'snap')) {
        const b = Buffer.from(pristine);
        for (const [at, bytes] of d.patch) bytes.copy(b, at);
        fs.writeFileSync(image, b);
        // loadvm writes to the image: QEMU gets a copy.
        fs.writeFileSync(probe, b);
        const qemu = await loadvm(probe, 'snap', false, MEM, gen).then((ram) => sha256(ram), (e: Error) => e.message);
        if (d.expect === 'loads') {
          expect(qemu, d.name).toBe(sha256(expectedRam(meta, 'snap')));
          expect(sha256(await extractMem(image, 'snap')), d.name).toBe(qemu);
          continue;
        }
        expect(qemu, d.name).toMatch(/^loadvm snap: /);
        for (const args of [['verify', image, '--snapshot', 'snap'], ['extract', image, '--snapshot', 'snap', '--block', 'mem', '-o', path.join(dir, 'r.ram'), '--force'], ['convert', image, path.join(dir, 'r.mig'), '--snapshot', 'snap', '--force']]) {
          const r = await runCli(args);
          expect(r.code, `${d.name}: ${args[0]}`).toBe(1);
          expect(r.stderr, `${d.name}: ${args[0]}`).toMatch(d.expect);
        }
      }
    });
  });
}
