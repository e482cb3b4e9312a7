// Fixture catalogue and cache: real QEMU migration files plus the exact guest RAM image
// (the `mem` block) QEMU had when saving.
//
// Lookup order for getFixture(name):
//   1. test/.generated/NAME.{mig,ram,json}   (cache, gitignored)
//   2. test/fixtures/NAME.json + .gz files   (committed, decompressed sparsely into the cache)
//   3. generate with QEMU                    (needs qemu-system-x86_64)
// Each QEMU generation has its own fixtures: QEMU 10's keep their names, QEMU 11's carry the
// generation's suffix (mr-32m.qemu11.json ...). getFixture uses the generation in force
// (describeQemu sets it), so a suite reads the files its QEMU wrote.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { fileSizes, nonZeroPages, writeGuestRam, writeSparse, type GuestRamSummary } from './guest-ram.js';
import { buildLibvirtHeader, setLibvirtMagic, LIBVIRT_EXAMPLE_OFFSET } from './libvirt-header.js';
import { currentGeneration, makeTempDir, qemuVersion, saveGuest, startGuest, startRunningGuest, type MigrateInfo, type QemuGeneration, type ZeroPageDetection } from './qemu.js';

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
  /** x-ignore-shared: the shared `mem` block is left out of the file (QEMU 11 for mapped-ram). */
  ignoreShared?: boolean;
  /** Machine type (default: q35, the generation's newest). */
  machine?: string;
  /** Generations that can write it (default: all; only SPECIAL_FIXTURES may narrow it). */
  generations?: Array<QemuGeneration['key']>;
  /** QEMU 10's file committed compressed under test/fixtures (else generated only). */
  commit: boolean;
  /** QEMU 11's file committed too (NAME.qemu11.*). */
  commit11?: boolean;
}

const base32 = { memMiB: 32, seed: 1, commit: true } as const;

export const FIXTURES: Record<string, FixtureSpec> = Object.fromEntries(
  (
    [
      { ...base32, name: 'mr-32m', description: 'mapped-ram, single channel', mappedRam: true, commit11: true },
      { ...base32, name: 'mr-mfd-32m', description: 'mapped-ram + multifd (2 channels)', mappedRam: true, multifd: 2 },
      { ...base32, name: 'mr-dio-32m', description: 'mapped-ram + multifd (2) + direct-io', mappedRam: true, multifd: 2, directIo: true },
      { ...base32, name: 'mr-off-32m', description: "mapped-ram at offset 0x11921 after an 'X' prefix", mappedRam: true, prefixOffset: LIBVIRT_EXAMPLE_OFFSET },
      { ...base32, name: 'stream-32m', description: 'plain stream (mapped-ram off)', mappedRam: false, commit11: true },
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

/**
 * Fixtures that need more than a plain save and load (x-ignore-shared, a stream at an offset, an
 * older machine type), so suites that iterate FIXTURES do not meet them; getFixture knows both.
 */
export const SPECIAL_FIXTURES: Record<string, FixtureSpec> = Object.fromEntries(
  (
    [
      { ...base32, name: 'stream-off-32m', description: "plain stream at offset 0x100000 after an 'X' prefix (file:PATH,offset=N)", mappedRam: false, prefixOffset: 0x100000, commit: false },
      { ...base32, name: 'mr-xis-32m', description: 'mapped-ram + x-ignore-shared: the shared mem block is left out (0/0 header)', mappedRam: true, ignoreShared: true, generations: ['11'], commit: false, commit11: true },
      { ...base32, name: 'stream-xis-32m', description: 'plain stream + x-ignore-shared: no page records for the shared mem block', mappedRam: false, ignoreShared: true, commit: false, commit11: true },
      { ...base32, name: 'mr-m100-32m', description: 'mapped-ram, machine pc-q35-10.0 (loadable by QEMU 10 and 11)', mappedRam: true, machine: 'pc-q35-10.0', commit: false },
      { ...base32, name: 'stream-m100-32m', description: 'plain stream, machine pc-q35-10.0 (loadable by QEMU 10 and 11)', mappedRam: false, machine: 'pc-q35-10.0', commit: false },
    ] satisfies FixtureSpec[]
  ).map((s) => [s.name, s as FixtureSpec]),
);

/** Spec of a fixture of either catalogue. */
export function fixtureSpec(name: string): FixtureSpec | undefined {
  return FIXTURES[name] ?? SPECIAL_FIXTURES[name];
}

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
  /** Generation that wrote it (absent in QEMU 10 fixtures made before generations: '10'). */
  generation?: QemuGeneration['key'];
  ignoreShared?: boolean;
  machine?: string;
}

export interface Fixture {
  name: string;
  /** The migration file (test/.generated/NAME.mig). */
  file: string;
  /** RAM image of the `mem` block, memMiB bytes (test/.generated/NAME.ram). */
  ramImage: string;
  meta: FixtureMeta;
}

/** File name of a fixture for a generation (QEMU 10's keep the plain name). */
export function fixtureBase(name: string, gen: QemuGeneration = currentGeneration()): string {
  return name + gen.fixtureSuffix;
}

/** Whether a generation can write a fixture (mapped-ram with x-ignore-shared needs QEMU 11). */
export function fixtureWritableBy(name: string, gen: QemuGeneration = currentGeneration()): boolean {
  const g = fixtureSpec(name)?.generations;
  return !g || g.includes(gen.key);
}

/** Whether a fixture is committed for a generation. */
export function committedFor(spec: FixtureSpec, gen: QemuGeneration): boolean {
  return fixtureWritableBy(spec.name, gen) && (gen.key === '10' ? spec.commit : (spec.commit11 ?? false));
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

function cached(name: string, gen: QemuGeneration): Fixture | null {
  const p = paths(fixtureBase(name, gen));
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

/**
 * Fixture by name, as the generation in force (or `gen`) writes it: from cache, else from the
 * committed .gz files, else generated with that QEMU.
 */
export async function getFixture(name: string, gen: QemuGeneration = currentGeneration()): Promise<Fixture> {
  const spec = fixtureSpec(name);
  if (!spec) throw new Error(`unknown fixture ${name}; known: ${[...Object.keys(FIXTURES), ...Object.keys(SPECIAL_FIXTURES)].join(', ')}`);
  if (!fixtureWritableBy(name, gen)) throw new Error(`fixture ${name} cannot be written by QEMU ${gen.key} (only ${spec.generations!.join(', ')})`);
  const hit = cached(name, gen);
  if (hit) return hit;
  const base = fixtureBase(name, gen);
  return withLock(base, async () => {
    const again = cached(name, gen);
    if (again) return again;
    if (fs.existsSync(path.join(COMMITTED_DIR, `${base}.json`))) return restoreCommitted(name, gen);
    return generateFixture(name, { generation: gen });
  });
}

/** True when the fixture can be had without QEMU (cached or committed). */
export function fixtureAvailableOffline(name: string, gen: QemuGeneration = currentGeneration()): boolean {
  return cached(name, gen) !== null || fs.existsSync(path.join(COMMITTED_DIR, `${fixtureBase(name, gen)}.json`));
}

function gunzipToSparse(gz: string, out: string): void {
  const buf = zlib.gunzipSync(fs.readFileSync(gz), { maxOutputLength: 2 ** 32 });
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  writeSparse(tmp, buf);
  fs.renameSync(tmp, out);
}

function restoreCommitted(name: string, gen: QemuGeneration): Fixture {
  const base = fixtureBase(name, gen);
  const meta = readMeta(path.join(COMMITTED_DIR, `${base}.json`));
  if (!meta) throw new Error(`committed fixture ${base} has an unsupported format version; run scripts/make-fixtures.ts --commit`);
  const p = paths(base);
  fs.mkdirSync(GENERATED_DIR, { recursive: true });
  gunzipToSparse(path.join(COMMITTED_DIR, `${base}.mig.gz`), p.mig);
  gunzipToSparse(path.join(COMMITTED_DIR, meta.ramGz ?? `${name}.ram.gz`), p.ram);
  const migSha = sha256File(p.mig);
  const ramSha = sha256File(p.ram);
  if (migSha !== meta.migSha256 || ramSha !== meta.ramSha256) throw new Error(`committed fixture ${name}: checksum mismatch after decompression`);
  fs.writeFileSync(p.json, JSON.stringify(meta, null, 2) + '\n');
  return { name, file: p.mig, ramImage: p.ram, meta };
}

/** Generate one fixture with QEMU into test/.generated (overwrites). Caller holds no lock. */
export async function generateFixture(name: string, opts: { log?: (s: string) => void; generation?: QemuGeneration } = {}): Promise<Fixture> {
  const spec = fixtureSpec(name);
  if (!spec) throw new Error(`unknown fixture ${name}`);
  const gen = opts.generation ?? currentGeneration();
  const version = qemuVersion(gen);
  if (!version) throw new Error(`fixture ${name} is not committed and QEMU ${gen.key} is not available to generate it`);
  const p = paths(fixtureBase(name, gen));
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

    const guestOpts = { memMiB: spec.memMiB, ramPath, dir: work, generation: gen, machine: spec.machine };
    const guest = spec.running ? await startRunningGuest(guestOpts) : await startGuest(guestOpts);
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
        ignoreShared: spec.ignoreShared,
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
      generation: gen.key,
      ignoreShared: spec.ignoreShared ?? false,
      machine: spec.machine ?? 'q35',
    };
    fs.renameSync(tmpMig, p.mig);
    fs.renameSync(tmpRam, p.ram);
    fs.writeFileSync(p.json, JSON.stringify(meta, null, 2) + '\n');
    opts.log?.(`${name} (QEMU ${version}): ${describeSizes(p.mig)} (save ${meta.saveWallMs} ms)`);
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
export function commitFixture(name: string, gen: QemuGeneration = currentGeneration()): { files: string[]; bytes: number } {
  const base = fixtureBase(name, gen);
  const p = paths(base);
  const meta = readMeta(p.json);
  if (!meta) throw new Error(`fixture ${base} not generated`);
  fs.mkdirSync(COMMITTED_DIR, { recursive: true });
  const files: string[] = [];
  const gz = (src: string, dst: string) => {
    fs.writeFileSync(dst, zlib.gzipSync(fs.readFileSync(src), { level: 9 }));
    files.push(dst);
  };
  gz(p.mig, path.join(COMMITTED_DIR, `${base}.mig.gz`));
  const ramGz = `ram-${meta.ramSha256.slice(0, 12)}.ram.gz`;
  const ramGzPath = path.join(COMMITTED_DIR, ramGz);
  if (!fs.existsSync(ramGzPath)) gz(p.ram, ramGzPath);
  else files.push(ramGzPath);
  const committedMeta = { ...meta, ramGz };
  fs.writeFileSync(path.join(COMMITTED_DIR, `${base}.json`), JSON.stringify(committedMeta, null, 2) + '\n');
  files.push(path.join(COMMITTED_DIR, `${base}.json`));
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
