// Fixture catalogue and cache: real QEMU migration files plus the exact guest RAM image
// (the `mem` block) QEMU had when saving.
//
// Lookup order for getFixture(name):
//   1. test/.generated/NAME.{mig,ram,json}   (cache, gitignored)
//   2. test/fixtures/NAME.json + .gz files   (committed, decompressed sparsely into the cache)
//   3. generate with QEMU                    (needs qemu-system-x86_64)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { fileSizes, nonZeroPages, writeGuestRam, writeSparse, type GuestRamSummary } from './guest-ram.js';
import { buildLibvirtHeader, setLibvirtMagic, LIBVIRT_EXAMPLE_OFFSET } from './libvirt-header.js';
import { makeTempDir, qemuVersion, saveGuest, startGuest, startRunningGuest, type MigrateInfo, type ZeroPageDetection } from './qemu.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const GENERATED_DIR = path.join(REPO_ROOT, 'test/.generated');
export const COMMITTED_DIR = path.join(REPO_ROOT, 'test/fixtures');
/** Bump when generation changes; cached fixtures with another version are regenerated. */
export const FIXTURE_FORMAT_VERSION = 1;

export interface FixtureSpec {
  name: string;
  description: string;
  memMiB: number;
  /** Seed for guest-ram.ts content (same seed + memMiB => identical RAM image). */
  seed: number;
  mappedRam: boolean;
  /** multifd channels (0 = off). */
  multifd?: number;
  directIo?: boolean;
  zeroPageDetection?: ZeroPageDetection;
  /** Write an 'X'-filled prefix of this many bytes, then save with file:...,offset=N. */
  prefixOffset?: number;
  /** Wrap in a libvirt save header: 'save' (complete) or 'part' (left incomplete). */
  libvirt?: 'save' | 'part';
  /** Live save of a running guest (boot sector dirtying 0x10000-0x9FFFF); RAM not seeded. */
  running?: boolean;
  /** Committed compressed under test/fixtures (else generated only). */
  commit: boolean;
}

const base32 = { memMiB: 32, seed: 1, commit: true } as const;

export const FIXTURES: Record<string, FixtureSpec> = Object.fromEntries(
  (
    [
      { ...base32, name: 'mr-32m', description: 'mapped-ram, single channel', mappedRam: true },
      { ...base32, name: 'mr-mfd-32m', description: 'mapped-ram + multifd (2 channels)', mappedRam: true, multifd: 2 },
      { ...base32, name: 'mr-dio-32m', description: 'mapped-ram + multifd (2) + direct-io', mappedRam: true, multifd: 2, directIo: true },
      { ...base32, name: 'mr-off-32m', description: "mapped-ram at offset 0x11921 after an 'X' prefix", mappedRam: true, prefixOffset: LIBVIRT_EXAMPLE_OFFSET },
      { ...base32, name: 'stream-32m', description: 'plain stream (mapped-ram off)', mappedRam: false },
      { ...base32, name: 'stream-zpd-none-32m', description: 'plain stream, zero-page-detection=none', mappedRam: false, zeroPageDetection: 'none' },
      { ...base32, name: 'mr-zpd-none-32m', description: 'mapped-ram, zero-page-detection=none (zero pages written, bits set)', mappedRam: true, zeroPageDetection: 'none' },
      { ...base32, name: 'libvirt-mr-32m', description: 'libvirt sparse save (format 6, Save magic), mapped-ram + multifd 1', mappedRam: true, multifd: 1, libvirt: 'save' },
      { ...base32, name: 'libvirt-part-mr-32m', description: 'libvirt sparse save left with the Part magic', mappedRam: true, multifd: 1, libvirt: 'part' },
      { ...base32, name: 'mr-live-32m', description: 'mapped-ram live save of a running guest (pages re-sent)', mappedRam: true, running: true, seed: 0 },
      { ...base32, name: 'stream-live-32m', description: 'plain stream live save of a running guest (pages re-sent)', mappedRam: false, running: true, seed: 0 },
      { name: 'mr-256m', description: 'mapped-ram, 256 MiB guest (multi-word bitmaps)', memMiB: 256, seed: 2, mappedRam: true, commit: false },
      { name: 'mr-mfd-256m', description: 'mapped-ram + multifd (2), 256 MiB guest', memMiB: 256, seed: 2, mappedRam: true, multifd: 2, commit: false },
      { name: 'stream-256m', description: 'plain stream, 256 MiB guest', memMiB: 256, seed: 2, mappedRam: false, commit: false },
    ] satisfies FixtureSpec[]
  ).map((s) => [s.name, s as FixtureSpec]),
);

export interface FixtureMeta {
  formatVersion: number;
  name: string;
  description: string;
  spec: FixtureSpec;
  qemuVersion: string;
  qemuArgs: string[];
  created: string;
  memMiB: number;
  /** RAMBlock idstr of the guest RAM (memory-backend id). */
  ramBlock: 'mem';
  pageSize: 4096;
  mappedRam: boolean;
  multifd: number;
  directIo: boolean;
  zeroPageDetection: ZeroPageDetection;
  /** Absolute file offset where QEMU's stream ('QEVM') starts. */
  offset: number;
  /** Byte filling [0, offset) for prefix fixtures. */
  prefixByte: string | null;
  libvirt: null | { magic: string; dataLen: number; format: number; headerSize: 92 };
  running: boolean;
  seed: number;
  ramSummary: GuestRamSummary | null;
  /** Non-zero pages of the RAM image (naive count). */
  ramNonZeroPages: number;
  /** QEMU's query-migrate at completion. */
  stats: MigrateInfo;
  sourceRunState: string;
  saveWallMs: number;
  migSha256: string;
  ramSha256: string;
  migBytes: number;
  /**
   * Allocated bytes of the file as QEMU wrote it. Fixtures restored from test/fixtures are
   * re-sparsified (every all-zero 4 KiB block becomes a hole), so their allocation can be
   * smaller than this (notably the zero-page-detection=none ones); content is identical.
   */
  migAllocatedAsWritten: number;
  /** Committed fixtures: name of the shared gz RAM image in test/fixtures. */
  ramGz?: string;
}

export interface Fixture {
  name: string;
  /** The migration file (test/.generated/NAME.mig). */
  file: string;
  /** RAM image of the `mem` block, memMiB bytes (test/.generated/NAME.ram). */
  ramImage: string;
  meta: FixtureMeta;
}

function paths(name: string, dir = GENERATED_DIR) {
  return { mig: path.join(dir, `${name}.mig`), ram: path.join(dir, `${name}.ram`), json: path.join(dir, `${name}.json`) };
}

function sha256File(p: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(p, 'r');
  const buf = Buffer.alloc(1 << 22);
  try {
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function readMeta(p: string): FixtureMeta | null {
  try {
    const m = JSON.parse(fs.readFileSync(p, 'utf8')) as FixtureMeta;
    return m.formatVersion === FIXTURE_FORMAT_VERSION ? m : null;
  } catch {
    return null;
  }
}

function cached(name: string): Fixture | null {
  const p = paths(name);
  const meta = readMeta(p.json);
  if (!meta || !fs.existsSync(p.mig) || !fs.existsSync(p.ram)) return null;
  if (fs.statSync(p.mig).size !== meta.migBytes) return null;
  return { name, file: p.mig, ramImage: p.ram, meta };
}

// ---------------------------------------------------------------- locking (vitest runs files in parallel)

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(GENERATED_DIR, { recursive: true });
  const lock = path.join(GENERATED_DIR, `${name}.lock`);
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // stale lock?
      let pid = 0;
      try {
        pid = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        /* being created */
      }
      let alive = true;
      if (pid) {
        try {
          process.kill(pid, 0);
        } catch {
          alive = false;
        }
      }
      if (!alive) {
        fs.rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timeout waiting for fixture lock ${lock}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- public API

/** Fixture by name: from cache, else from the committed .gz files, else generated with QEMU. */
export async function getFixture(name: string): Promise<Fixture> {
  const spec = FIXTURES[name];
  if (!spec) throw new Error(`unknown fixture ${name}; known: ${Object.keys(FIXTURES).join(', ')}`);
  const hit = cached(name);
  if (hit) return hit;
  return withLock(name, async () => {
    const again = cached(name);
    if (again) return again;
    if (fs.existsSync(path.join(COMMITTED_DIR, `${name}.json`))) return restoreCommitted(name);
    return generateFixture(name);
  });
}

/** True when the fixture can be had without QEMU (cached or committed). */
export function fixtureAvailableOffline(name: string): boolean {
  return cached(name) !== null || fs.existsSync(path.join(COMMITTED_DIR, `${name}.json`));
}

function gunzipToSparse(gz: string, out: string): void {
  const buf = zlib.gunzipSync(fs.readFileSync(gz), { maxOutputLength: 2 ** 32 });
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  writeSparse(tmp, buf);
  fs.renameSync(tmp, out);
}

function restoreCommitted(name: string): Fixture {
  const meta = readMeta(path.join(COMMITTED_DIR, `${name}.json`));
  if (!meta) throw new Error(`committed fixture ${name} has an unsupported format version; run scripts/make-fixtures.ts --commit`);
  const p = paths(name);
  fs.mkdirSync(GENERATED_DIR, { recursive: true });
  gunzipToSparse(path.join(COMMITTED_DIR, `${name}.mig.gz`), p.mig);
  gunzipToSparse(path.join(COMMITTED_DIR, meta.ramGz ?? `${name}.ram.gz`), p.ram);
  const migSha = sha256File(p.mig);
  const ramSha = sha256File(p.ram);
  if (migSha !== meta.migSha256 || ramSha !== meta.ramSha256) throw new Error(`committed fixture ${name}: checksum mismatch after decompression`);
  fs.writeFileSync(p.json, JSON.stringify(meta, null, 2) + '\n');
  return { name, file: p.mig, ramImage: p.ram, meta };
}

/** Generate one fixture with QEMU into test/.generated (overwrites). Caller holds no lock. */
export async function generateFixture(name: string, opts: { log?: (s: string) => void } = {}): Promise<Fixture> {
  const spec = FIXTURES[name];
  if (!spec) throw new Error(`unknown fixture ${name}`);
  const version = qemuVersion();
  if (!version) throw new Error(`fixture ${name} is not committed and QEMU is not available to generate it`);
  const p = paths(name);
  fs.mkdirSync(GENERATED_DIR, { recursive: true });
  const tmpMig = `${p.mig}.tmp-${process.pid}`;
  const tmpRam = `${p.ram}.tmp-${process.pid}`;
  fs.rmSync(tmpMig, { force: true });
  const shm = makeTempDir('mram-fx-', true);
  const work = makeTempDir('mram-fx-');
  const ramPath = path.join(shm, 'ram');
  try {
    let ramSummary: GuestRamSummary | null = null;
    if (!spec.running) ramSummary = writeGuestRam(ramPath, spec.memMiB, spec.seed);

    let offset = 0;
    let prefixByte: string | null = null;
    let libvirt: FixtureMeta['libvirt'] = null;
    if (spec.prefixOffset) {
      offset = spec.prefixOffset;
      prefixByte = 'X';
      fs.writeFileSync(tmpMig, Buffer.alloc(offset, 'X'));
    } else if (spec.libvirt) {
      const h = buildLibvirtHeader({ part: true, format: 6, wasRunning: false });
      fs.writeFileSync(tmpMig, h.bytes);
      offset = h.qemuOffset;
      libvirt = { magic: '', dataLen: h.dataLen, format: 6, headerSize: 92 };
    }

    const guest = spec.running
      ? await startRunningGuest({ memMiB: spec.memMiB, ramPath, dir: work })
      : await startGuest({ memMiB: spec.memMiB, ramPath, dir: work });
    let res;
    try {
      res = await saveGuest({
        guest,
        out: tmpMig,
        offset: offset || undefined,
        mappedRam: spec.mappedRam,
        multifd: spec.multifd,
        directIo: spec.directIo,
        zeroPageDetection: spec.zeroPageDetection,
        running: spec.running,
        minDirtySyncs: spec.running ? 5 : undefined,
      });
      if (res.runState !== 'postmigrate') throw new Error(`source ended in ${res.runState}, expected postmigrate`);
      // guest is stopped in postmigrate: its RAM file is the expected image
      fs.rmSync(tmpRam, { force: true });
      writeSparse(tmpRam, fs.readFileSync(ramPath));
    } finally {
      await guest.kill();
    }

    if (spec.libvirt === 'save') setLibvirtMagic(tmpMig, true);
    if (libvirt) libvirt.magic = spec.libvirt === 'save' ? 'LibvirtQemudSave' : 'LibvirtQemudPart';

    const ramBuf = fs.readFileSync(tmpRam);
    const meta: FixtureMeta = {
      formatVersion: FIXTURE_FORMAT_VERSION,
      name,
      description: spec.description,
      spec,
      qemuVersion: version,
      qemuArgs: guest.args.filter((a) => !a.startsWith('unix:')),
      created: new Date().toISOString(),
      memMiB: spec.memMiB,
      ramBlock: 'mem',
      pageSize: 4096,
      mappedRam: spec.mappedRam,
      multifd: spec.multifd ?? 0,
      directIo: spec.directIo ?? false,
      zeroPageDetection: spec.zeroPageDetection ?? 'multifd',
      offset,
      prefixByte,
      libvirt,
      running: spec.running ?? false,
      seed: spec.seed,
      ramSummary,
      ramNonZeroPages: nonZeroPages(ramBuf, 4096),
      stats: res.stats,
      sourceRunState: res.runState,
      saveWallMs: Math.round(res.wallMs),
      migSha256: sha256File(tmpMig),
      ramSha256: crypto.createHash('sha256').update(ramBuf).digest('hex'),
      migBytes: fs.statSync(tmpMig).size,
      migAllocatedAsWritten: fileSizes(tmpMig).allocated,
    };
    fs.renameSync(tmpMig, p.mig);
    fs.renameSync(tmpRam, p.ram);
    fs.writeFileSync(p.json, JSON.stringify(meta, null, 2) + '\n');
    opts.log?.(`${name}: ${describeSizes(p.mig)} (save ${meta.saveWallMs} ms)`);
    return { name, file: p.mig, ramImage: p.ram, meta };
  } finally {
    fs.rmSync(tmpMig, { force: true });
    fs.rmSync(tmpRam, { force: true });
    fs.rmSync(shm, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export function describeSizes(p: string): string {
  const s = fileSizes(p);
  return `apparent ${s.apparent} B, allocated ${s.allocated} B`;
}

/**
 * Compress a generated fixture into test/fixtures (NAME.mig.gz, NAME.json, shared RAM image
 * `ram-<sha12>.ram.gz`, deduplicated across fixtures with identical RAM).
 */
export function commitFixture(name: string): { files: string[]; bytes: number } {
  const p = paths(name);
  const meta = readMeta(p.json);
  if (!meta) throw new Error(`fixture ${name} not generated`);
  fs.mkdirSync(COMMITTED_DIR, { recursive: true });
  const files: string[] = [];
  const gz = (src: string, dst: string) => {
    fs.writeFileSync(dst, zlib.gzipSync(fs.readFileSync(src), { level: 9 }));
    files.push(dst);
  };
  gz(p.mig, path.join(COMMITTED_DIR, `${name}.mig.gz`));
  const ramGz = `ram-${meta.ramSha256.slice(0, 12)}.ram.gz`;
  const ramGzPath = path.join(COMMITTED_DIR, ramGz);
  if (!fs.existsSync(ramGzPath)) gz(p.ram, ramGzPath);
  else files.push(ramGzPath);
  const committedMeta = { ...meta, ramGz };
  fs.writeFileSync(path.join(COMMITTED_DIR, `${name}.json`), JSON.stringify(committedMeta, null, 2) + '\n');
  files.push(path.join(COMMITTED_DIR, `${name}.json`));
  fs.writeFileSync(p.json, JSON.stringify(committedMeta, null, 2) + '\n');
  return { files, bytes: files.reduce((a, f) => a + fs.statSync(f).size, 0) };
}

/** Remove committed RAM images no committed fixture references. */
export function pruneCommittedRamImages(): string[] {
  if (!fs.existsSync(COMMITTED_DIR)) return [];
  const used = new Set<string>();
  for (const f of fs.readdirSync(COMMITTED_DIR)) {
    if (!f.endsWith('.json')) continue;
    const m = readMeta(path.join(COMMITTED_DIR, f));
    if (m?.ramGz) used.add(m.ramGz);
  }
  const removed: string[] = [];
  for (const f of fs.readdirSync(COMMITTED_DIR)) {
    if (f.endsWith('.ram.gz') && !used.has(f)) {
      fs.rmSync(path.join(COMMITTED_DIR, f));
      removed.push(f);
    }
  }
  return removed;
}
