// qcow2 internal snapshots made by real QEMU: QEMU 11 (trixie chroot) or 10 (host) savevm into a
// qcow2 disk, guests whose RAM the test writes, committed fixtures, and crafted compressed images.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Qcow2Image } from '../../src/qcow2/index.js';
import { COMMITTED_DIR, GENERATED_DIR, REPO_ROOT } from './fixtures.js';
import { makeGuestRam, writeSparse } from './guest-ram.js';
import { generation, makeTempDir, QEMU_BIN, qemuAvailable } from './qemu.js';
import { QmpClient } from './qmp.js';

export const TRIXIE = path.join(REPO_ROOT, 'scripts/trixie');
export type Generation = 10 | 11;

/** QEMU 11 and qemu-img 11 runnable through scripts/trixie. */
export function qemu11Available(): boolean {
  return qemuAvailable(generation('11'));
}

/** Runs qemu-img (11 in the chroot, else the host's); paths must be absolute. */
export function qemuImg(args: string[], gen: Generation = 11): string {
  const r = gen === 11 ? spawnSync(TRIXIE, ['qemu-img', ...args], { encoding: 'utf8' }) : spawnSync('qemu-img', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-img ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export interface SnapGuest {
  qmp: QmpClient;
  ramPath: string;
  /** An HMP command; its output (HMP reports errors as text). */
  hmp(cmd: string): Promise<string>;
  stderr(): string;
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** A paused q35 guest whose RAM is `ramPath` (share=on), with `disk` as its qcow2 IDE disk. */
export async function startSnapGuest(o: { gen: Generation; memMiB: number; ramPath: string; disk?: string; incoming?: boolean }): Promise<SnapGuest> {
  const dir = makeTempDir('mram-q2-');
  const sock = path.join(dir, 'qmp.sock');
  const args = [
    '-machine', 'q35,memory-backend=mem', '-accel', 'tcg', '-m', `${o.memMiB}M`,
    '-object', `memory-backend-file,id=mem,size=${o.memMiB}M,mem-path=${o.ramPath},share=on`,
    '-nodefaults', '-display', 'none', '-serial', 'none', '-monitor', 'none', '-S',
    '-qmp', `unix:${sock},server=on,wait=off`,
  ];
  if (o.disk) args.push('-drive', `file=${o.disk},format=qcow2,if=ide,index=0,media=disk`);
  if (o.incoming) args.push('-incoming', 'defer');
  const cmd = o.gen === 11 ? [TRIXIE, 'qemu-system-x86_64', ...args] : [QEMU_BIN, ...args];
  const proc = spawn('setpriv', ['--pdeathsig', 'KILL', ...cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => (live.delete(proc), r())));
  const kill = async () => {
    qmp?.close();
    if (live.has(proc)) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  let qmp: QmpClient | undefined;
  try {
    qmp = await Promise.race([QmpClient.connect(sock, 30_000), exited.then(() => Promise.reject(new Error(`QEMU exited: ${err}`)))]);
  } catch (e) {
    await kill();
    throw e;
  }
  const q = qmp;
  return {
    qmp: q,
    ramPath: o.ramPath,
    hmp: (c) => q.execute<string>('human-monitor-command', { 'command-line': c }),
    stderr: () => err,
    kill,
  };
}

/** savevm NAME with mapped-ram on or off; HMP errors become exceptions. */
export async function savevm(g: SnapGuest, name: string, mappedRam: boolean): Promise<void> {
  await g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'mapped-ram', state: mappedRam }] });
  const out = await g.hmp(`savevm ${name}`);
  if (out.trim()) throw new Error(`savevm ${name}: ${out.trim()}`);
}

/** Loads a migration file into a fresh guest (`migrate-incoming file:`) of QEMU `gen`; its RAM afterwards. */
export async function loadFile(file: string, mappedRam: boolean, memMiB: number, disk?: string, gen: Generation = 11, timeoutMs = 120_000): Promise<Buffer> {
  const ramDir = makeTempDir('mram-q2ram-', true);
  const g = await startSnapGuest({ gen, memMiB, ramPath: path.join(ramDir, 'ram'), disk, incoming: true });
  try {
    await g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'mapped-ram', state: mappedRam }] });
    await g.qmp.execute('migrate-incoming', { uri: `file:${file}` });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const st = await g.qmp.execute<{ status: string }>('query-migrate');
      const run = await g.qmp.execute<{ status: string }>('query-status');
      if (st.status === 'failed') throw new Error(`incoming failed: ${g.stderr()}`);
      if (st.status === 'completed' && run.status !== 'inmigrate') break;
      if (Date.now() > deadline) throw new Error('load timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
    return fs.readFileSync(g.ramPath);
  } finally {
    await g.kill();
    fs.rmSync(ramDir, { recursive: true, force: true });
  }
}

/** loadvm NAME from `disk` into a fresh guest of QEMU `gen`; its RAM afterwards. */
export async function loadvm(disk: string, name: string, mappedRam: boolean, memMiB: number, gen: Generation = 11, timeoutMs = 120_000): Promise<Buffer> {
  const ramDir = makeTempDir('mram-q2ram-', true);
  const g = await startSnapGuest({ gen, memMiB, ramPath: path.join(ramDir, 'ram'), disk });
  let timer: NodeJS.Timeout | undefined;
  try {
    await g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'mapped-ram', state: mappedRam }] });
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('loadvm timed out')), timeoutMs)));
    const out = await Promise.race([g.hmp(`loadvm ${name}`), timeout]);
    if (out.trim()) throw new Error(`loadvm ${name}: ${out.trim()}`);
    return fs.readFileSync(g.ramPath);
  } finally {
    clearTimeout(timer);
    await g.kill();
    fs.rmSync(ramDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- snapshot images

export interface SnapshotSpec {
  name: string;
  /** makeGuestRam seed of the RAM at this savevm. */
  seed: number;
  mappedRam: boolean;
  /** delvm after all saves. */
  deleted?: boolean;
}

export interface Qcow2FixtureMeta {
  name: string;
  qemu: string;
  memMiB: number;
  /** qemu-img create -o options. */
  options: string;
  snapshots: Array<SnapshotSpec & { ramSha256: string }>;
  imageSha256: string;
}

export interface Qcow2FixtureSpec {
  name: string;
  gen: Generation;
  options: string;
  saves: SnapshotSpec[];
}

const MEM = 32;
export const QCOW2_FIXTURES: Record<string, Qcow2FixtureSpec> = Object.fromEntries(
  ([
    { name: 'snap-v3', gen: 11, options: 'compat=1.1', saves: [
      { name: 'stream-a', seed: 101, mappedRam: false },
      { name: 'mr-b', seed: 102, mappedRam: true },
      { name: 'mr-gone', seed: 103, mappedRam: true, deleted: true },
      { name: 'stream-d', seed: 104, mappedRam: false },
    ] },
    { name: 'snap-extl2', gen: 11, options: 'compat=1.1,extended_l2=on,cluster_size=64k', saves: [
      { name: 'mr', seed: 201, mappedRam: true },
      { name: 'stream', seed: 202, mappedRam: false },
    ] },
    { name: 'snap-v2', gen: 11, options: 'compat=0.10,cluster_size=4k', saves: [
      { name: 'stream', seed: 301, mappedRam: false },
      { name: 'mr', seed: 302, mappedRam: true },
    ] },
    { name: 'snap-zstd-2m', gen: 11, options: 'compat=1.1,compression_type=zstd,cluster_size=2M', saves: [
      { name: 'mr', seed: 401, mappedRam: true },
    ] },
  ] as Qcow2FixtureSpec[]).map((s) => [s.name, s]),
);

export const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

/** Expected `mem` content of a snapshot: regenerated from its seed, checked against QEMU's RAM file at save time. */
export function expectedRam(meta: Qcow2FixtureMeta, name: string): Buffer {
  const s = meta.snapshots.find((x) => x.name === name)!;
  const buf = makeGuestRam(meta.memMiB, s.seed).buf;
  if (sha256(buf) !== s.ramSha256) throw new Error(`RAM of ${name} differs from the RAM file QEMU saved`);
  return buf;
}

/** Makes an image with QEMU: each save writes its seed's RAM into the guest, then savevm. */
export async function buildSnapshotImage(spec: Qcow2FixtureSpec, dest: string): Promise<Qcow2FixtureMeta> {
  // QEMU 11 sees only /tmp and /dev/shm of the host: build there, then move.
  const work = makeTempDir('mram-q2img-');
  const out = path.join(work, 'disk.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', '-o', spec.options, out, '64M'], spec.gen);
  const ramDir = makeTempDir('mram-q2ram-', true);
  const ramPath = path.join(ramDir, 'ram');
  fs.writeFileSync(ramPath, Buffer.alloc(0));
  fs.truncateSync(ramPath, MEM << 20);
  const g = await startSnapGuest({ gen: spec.gen, memMiB: MEM, ramPath, disk: out });
  const snapshots: Qcow2FixtureMeta['snapshots'] = [];
  try {
    for (const s of spec.saves) {
      // In place, every byte: QEMU has the file mapped, and the previous save's pages must go.
      const fd = fs.openSync(ramPath, 'r+');
      fs.writeSync(fd, makeGuestRam(MEM, s.seed).buf, 0, MEM << 20, 0);
      fs.closeSync(fd);
      await savevm(g, s.name, s.mappedRam);
      snapshots.push({ ...s, ramSha256: sha256(fs.readFileSync(ramPath)) });
    }
    for (const s of spec.saves.filter((x) => x.deleted)) {
      const o = await g.hmp(`delvm ${s.name}`);
      if (o.trim()) throw new Error(`delvm: ${o}`);
    }
    await g.qmp.execute('quit').catch(() => undefined);
  } finally {
    await g.kill();
    fs.rmSync(ramDir, { recursive: true, force: true });
  }
  const version = spawnSync(spec.gen === 11 ? TRIXIE : QEMU_BIN, spec.gen === 11 ? ['qemu-system-x86_64', '--version'] : ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]!;
  const imageSha256 = sha256(fs.readFileSync(out));
  fs.copyFileSync(out, dest);
  fs.rmSync(work, { recursive: true, force: true });
  return { name: spec.name, qemu: version, memMiB: MEM, options: spec.options, snapshots, imageSha256 };
}

/** A fixture image: cached in test/.generated, else restored from test/fixtures, else made with QEMU 11. */
export async function getQcow2Fixture(name: string): Promise<{ image: string; meta: Qcow2FixtureMeta }> {
  const spec = QCOW2_FIXTURES[name]!;
  fs.mkdirSync(GENERATED_DIR, { recursive: true });
  const image = path.join(GENERATED_DIR, `${name}.qcow2`);
  const metaPath = path.join(GENERATED_DIR, `${name}.qcow2.json`);
  const committed = path.join(COMMITTED_DIR, `${name}.qcow2.json`);
  if (fs.existsSync(metaPath) && fs.existsSync(image)) return { image, meta: JSON.parse(fs.readFileSync(metaPath, 'utf8')) };
  let meta: Qcow2FixtureMeta;
  const tmp = `${image}.tmp-${process.pid}`;
  if (fs.existsSync(committed)) {
    meta = JSON.parse(fs.readFileSync(committed, 'utf8'));
    writeSparse(tmp, zlib.gunzipSync(fs.readFileSync(path.join(COMMITTED_DIR, `${name}.qcow2.gz`)), { maxOutputLength: 2 ** 31 }));
    if (sha256(fs.readFileSync(tmp)) !== meta.imageSha256) throw new Error(`committed ${name}.qcow2.gz: checksum mismatch`);
  } else {
    if (!qemuAvailable(generation(spec.gen === 11 ? '11' : '10'))) throw new Error(`fixture ${name} needs QEMU ${spec.gen}`);
    meta = await buildSnapshotImage(spec, tmp);
  }
  fs.renameSync(tmp, image);
  fs.writeFileSync(metaPath, JSON.stringify(meta, null, 2) + '\n');
  return { image, meta };
}

/** Writes test/fixtures/NAME.qcow2.gz and its metadata (scripts/make-qcow2-fixtures.ts). */
export function commitQcow2Fixture(name: string): number {
  const image = path.join(GENERATED_DIR, `${name}.qcow2`);
  const gz = zlib.gzipSync(fs.readFileSync(image), { level: 9 });
  fs.writeFileSync(path.join(COMMITTED_DIR, `${name}.qcow2.gz`), gz);
  fs.copyFileSync(path.join(GENERATED_DIR, `${name}.qcow2.json`), path.join(COMMITTED_DIR, `${name}.qcow2.json`));
  return gz.length;
}

// ---------------------------------------------------------------- compressed vmstate, crafted with qemu-img

/**
 * An image whose snapshot `name` holds `vmstate` (a migration file's bytes) in compressed
 * clusters: a raw disk with the bytes at the vmstate area's offset goes through
 * `qemu-img convert -c`, the header's disk size is then set below that offset, `qemu-img
 * snapshot -c` copies the L1 table, and the snapshot's vm_state_size is set. QEMU's loadvm
 * reads it like any other snapshot.
 */
export async function craftCompressedSnapshot(vmstate: string, out: string, o: { compression: 'zlib' | 'zstd'; name: string; diskMiB: number; vmStateSize: number }): Promise<void> {
  const coverage = (65536 / 8) * 65536;
  const start = Math.ceil((o.diskMiB << 20) / coverage) * coverage;
  const raw = `${out}.raw`;
  const data = fs.readFileSync(vmstate);
  fs.rmSync(raw, { force: true });
  writeSparse(raw, data, { offset: start });
  fs.truncateSync(raw, start + Math.ceil(data.length / 65536) * 65536);
  fs.rmSync(out, { force: true });
  qemuImg(['convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `compat=1.1,cluster_size=64k,compression_type=${o.compression}`, raw, out]);
  fs.rmSync(raw);
  const fd = fs.openSync(out, 'r+');
  try {
    const size = Buffer.alloc(8);
    size.writeBigUInt64BE(BigInt(o.diskMiB << 20));
    fs.writeSync(fd, size, 0, 8, 24);
  } finally {
    fs.closeSync(fd);
  }
  qemuImg(['snapshot', '-c', o.name, out]);
  await patchVmStateSize(out, o.name, o.vmStateSize);
}

/** Sets a snapshot's vm_state_size (and vm_state_size_large) in place. */
async function patchVmStateSize(image: string, name: string, size: number): Promise<void> {
  const img = await Qcow2Image.open(image);
  const sn = img.snapshots.find((s) => s.name === name)!;
  await img.close();
  const fd = fs.openSync(image, 'r+');
  try {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(Math.min(size, 0xffffffff));
    fs.writeSync(fd, b, 0, 4, sn.entryOffset + 32);
    b.writeBigUInt64BE(BigInt(size));
    fs.writeSync(fd, b, 0, 8, sn.entryOffset + 40);
  } finally {
    fs.closeSync(fd);
  }
}

/** `migrate file:OUT` of a QEMU 11 guest with `disk` attached and the RAM of `seed`; returns the RAM saved. */
export async function migrateToFile11(out: string, disk: string, seed: number, mappedRam: boolean, memMiB = MEM): Promise<Buffer> {
  const ramDir = makeTempDir('mram-q2ram-', true);
  const ramPath = path.join(ramDir, 'ram');
  fs.writeFileSync(ramPath, makeGuestRam(memMiB, seed).buf);
  const g = await startSnapGuest({ gen: 11, memMiB, ramPath, disk });
  try {
    await g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'mapped-ram', state: mappedRam }] });
    await g.qmp.execute('migrate', { uri: `file:${out}` });
    for (const deadline = Date.now() + 120_000; ; ) {
      const st = await g.qmp.execute<{ status: string; 'error-desc'?: string }>('query-migrate');
      if (st.status === 'completed') break;
      if (st.status === 'failed' || Date.now() > deadline) throw new Error(`migrate: ${st.status} ${st['error-desc'] ?? ''}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return fs.readFileSync(ramPath);
  } finally {
    await g.kill();
    fs.rmSync(ramDir, { recursive: true, force: true });
  }
}
