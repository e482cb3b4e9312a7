// VM state in qcow2 internal snapshots, from committed QEMU 11 images: list, inspect, extract,
// verify, convert, and the library call — compared with the RAM QEMU saved.
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationFile, openSnapshotSource, verifyFile } from '../../src/index.js';
import { VmStateSource, Qcow2Image } from '../../src/qcow2/index.js';
import { runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/fixtures.js';
import { expectedRam, getQcow2Fixture, QCOW2_FIXTURES, sha256, type Qcow2FixtureMeta } from '../support/qcow2.js';
import { tempDir } from '../verify/support.js';

const dir = tempDir('mram-qcow2-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const validate = new Ajv({ allErrors: true }).compile(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'spec/inspect.schema.json'), 'utf8')));

/** The bytes of a snapshot's VM state as our reader sees them, as a standalone migration file. */
async function vmStateFile(image: string, snapshot: string, out: string): Promise<{ size: number; hostOf: (pos: number) => Promise<number> }> {
  const src = (await openSnapshotSource(image, snapshot)) as VmStateSource;
  try {
    const buf = new Uint8Array(src.size);
    await src.readInto(buf, 0);
    fs.writeFileSync(out, buf);
    const size = src.size;
    const img = await Qcow2Image.open(image);
    const sn = img.snapshots.find((s) => s.name === snapshot)!;
    const mapper = await VmStateSource.open(img, sn);
    return {
      size,
      hostOf: async (pos) => {
        const cs = img.header.clusterSize;
        const m = await mapper.mapping(Math.floor(pos / cs));
        await img.close();
        if (m.kind !== 'data' && m.kind !== 'subclusters') throw new Error(`position ${pos} is not in a data cluster (${m.kind})`);
        return m.host + (pos % cs);
      },
    };
  } finally {
    await src.close();
  }
}

describe('qcow2 snapshots (committed QEMU 11 images)', () => {
  const fx: Record<string, { image: string; meta: Qcow2FixtureMeta }> = {};
  beforeAll(async () => {
    for (const name of Object.keys(QCOW2_FIXTURES)) fx[name] = await getQcow2Fixture(name);
  }, 600_000);

  it('inspect lists the snapshots holding VM state (the deleted one is gone), text and JSON', async () => {
    const { image } = fx['snap-v3']!;
    const r = await runCli(['inspect', image]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/stream-a .* stream\n/);
    expect(r.stdout).toMatch(/mr-b .* mapped-ram\n/);
    expect(r.stdout).not.toContain('mr-gone');
    const j = await runCli(['inspect', image, '--json']);
    const doc = JSON.parse(j.stdout);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    expect(doc.format).toBe('qcow2');
    expect(doc.snapshots.map((s: { name: string; format: string }) => `${s.name}:${s.format}`)).toEqual(['stream-a:stream', 'mr-b:mapped-ram', 'stream-d:stream']);
    const mr = doc.snapshots[1];
    // The quirk: QEMU records the stream bytes only; the layout spans the page areas too.
    expect(mr.extent).toBeGreaterThan(mr.vmStateSize);
    expect(mr.extent).toBeGreaterThan(32 << 20);
    expect(doc.snapshots[0].extent).toBe(doc.snapshots[0].vmStateSize);
  });

  for (const name of Object.keys(QCOW2_FIXTURES)) {
    it(`${name}: every snapshot's mem block extracts to the RAM QEMU saved, and verify --digest is clean`, async () => {
      const { image, meta } = fx[name]!;
      for (const s of meta.snapshots.filter((x) => !x.deleted)) {
        const want = expectedRam(meta, s.name);
        const out = path.join(dir, `${name}-${s.name}.ram`);
        const r = await runCli(['extract', image, '--snapshot', s.name, '--block', 'mem', '-o', out]);
        expect(r.code, r.stderr).toBe(0);
        expect(fs.readFileSync(out).equals(want), `${name} ${s.name}`).toBe(true);
        const v = await runCli(['verify', image, '--snapshot', s.name, '--digest', '--json']);
        const rep = JSON.parse(v.stdout);
        expect(rep.errors, v.stdout).toEqual([]);
        expect(rep.format).toBe(s.mappedRam ? 'mapped-ram' : 'stream');
        expect(rep.digests.mem).toBe(sha256(want));
      }
    });
  }

  it('the library opens a snapshot as the same MigrationFile a file gives', async () => {
    const { image, meta } = fx['snap-v3']!;
    const f = await MigrationFile.open(image, { snapshot: '2' });
    try {
      expect(f.format).toBe('mapped-ram');
      expect(f.complete).toBe(true);
      expect(f.path).toContain('snapshot "mr-b"');
      const mem = f.block('mem');
      const want = expectedRam(meta, 'mr-b');
      const page = await mem.readPage(want.length / 4096 - 1);
      expect(Buffer.from(page).equals(want.subarray(want.length - 4096))).toBe(true);
    } finally {
      await f.close();
    }
  });

  it('a qcow2 image without --snapshot, an unknown, ambiguous or disk-only snapshot: one line naming the candidates', async () => {
    const { image } = fx['snap-v3']!;
    const none = await runCli(['verify', image]);
    expect(none.code).toBe(64);
    expect(none.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(none.stderr).toContain('--snapshot');
    expect(none.stderr).toContain('id 1 "stream-a", id 2 "mr-b", id 4 "stream-d"');
    const unknown = await runCli(['extract', image, '--snapshot', 'mr-gone', '--all', path.join(dir, 'x')]);
    expect(unknown.stderr).toMatch(/^mram extract: no snapshot "mr-gone" with VM state; candidates: id 1 "stream-a", id 2 "mr-b", id 4 "stream-d"\n$/);
    // A name that is another snapshot's id: QEMU would take the id; mram asks.
    const copy = path.join(dir, 'ambiguous.qcow2');
    fs.copyFileSync(image, copy);
    await renameSnapshot(copy, 'stream-d', '2');
    const amb = await runCli(['convert', copy, path.join(dir, 'amb.mig'), '--snapshot', '2']);
    expect(amb.stderr).toMatch(/^mram convert: snapshot "2" is ambiguous: id 2 "mr-b", id 4 "2"\n$/);
    expect(fs.existsSync(path.join(dir, 'amb.mig'))).toBe(false);
  });

  it('convert a snapshot to a standalone file in each format: the RAM is the same', async () => {
    const { image, meta } = fx['snap-v3']!;
    for (const [snap, to] of [['mr-b', 'stream'], ['mr-b', 'mapped-ram'], ['stream-a', 'mapped-ram']] as const) {
      const out = path.join(dir, `conv-${snap}-${to}.mig`);
      const r = await runCli(['convert', image, out, '--snapshot', snap, '--to', to]);
      expect(r.code, r.stderr).toBe(0);
      const v = await verifyFile(out, { digest: true });
      expect(v.errors).toEqual([]);
      expect(v.format).toBe(to);
      expect(v.digests.mem).toBe(sha256(expectedRam(meta, snap)));
    }
  });

  it('verify finds the same defects in a snapshot as in the same bytes in a file', async () => {
    const { image } = fx['snap-v3']!;
    for (const damage of ['bitmap', 'footer'] as const) {
      const img = path.join(dir, `damaged-${damage}.qcow2`);
      fs.copyFileSync(image, img);
      const file = path.join(dir, `damaged-${damage}.mig`);
      const { hostOf } = await vmStateFile(img, 'mr-b', file);
      const f = await MigrationFile.open(file);
      const mem = f.block('mem');
      // bitmap: all bits of mem cleared (a save that never wrote its bitmap); footer: the first FULL section's footer byte.
      const at = damage === 'bitmap' ? (mem.entry.mappedRam!.bitmapOffset) : f.sections.find((s) => s.type === 'full')!.offset + f.sections.find((s) => s.type === 'full')!.length - 5;
      const len = damage === 'bitmap' ? Math.ceil(mem.pages / 8) : 1;
      await f.close();
      const bytes = Buffer.alloc(len, damage === 'bitmap' ? 0 : 0x55);
      fs.writeFileSync(file, fs.readFileSync(file).fill(bytes[0]!, at, at + len));
      const fd = fs.openSync(img, 'r+');
      for (let i = 0; i < len; i += 512) {
        const k = Math.min(512, len - i);
        fs.writeSync(fd, bytes, 0, k, await hostOf(at + i));
      }
      fs.closeSync(fd);
      const a = await verifyFile(file);
      const b = await verifyFile(img, { snapshot: 'mr-b' });
      const codes = (r: typeof a) => [...r.errors, ...r.warnings].map((x) => `${x.code}@${x.offset}`);
      expect(codes(a).length, damage).toBeGreaterThan(0);
      expect(codes(b)).toEqual(codes(a));
    }
  });
});

/** Rewrites a snapshot's name in place (same length or shorter, padded by the entry). */
async function renameSnapshot(image: string, from: string, to: string): Promise<void> {
  const img = await Qcow2Image.open(image);
  const sn = img.snapshots.find((s) => s.name === from)!;
  await img.close();
  const fd = fs.openSync(image, 'r+');
  const fixed = Buffer.alloc(40);
  fs.readSync(fd, fixed, 0, 40, sn.entryOffset);
  const extra = fixed.readUInt32BE(36);
  const idLen = fixed.readUInt16BE(12);
  fixed.writeUInt16BE(to.length, 14);
  fs.writeSync(fd, fixed, 0, 40, sn.entryOffset);
  fs.writeSync(fd, Buffer.from(to, 'latin1'), 0, to.length, sn.entryOffset + 40 + extra + idLen);
  fs.closeSync(fd);
}

