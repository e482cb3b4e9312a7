// Drives real QEMU (qemu-system-x86_64, TCG) for tests, fixtures and benchmarks.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QmpClient, QmpError } from './qmp.js';

// vitest may only be imported inside a vitest run; scripts (make-fixtures) import this module too.
const vt = process.env.VITEST ? await import('vitest') : undefined;

/** QEMU 10 on the host (scripts/install-qemu.sh); MRAM_QEMU overrides the binary. */
export const QEMU_BIN = process.env.MRAM_QEMU ?? 'qemu-system-x86_64';
export const MIN_QEMU: [number, number] = [9, 0];
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// ---------------------------------------------------------------- generations

/**
 * One QEMU generation the tests run against. `key` names it in fixture file names ('' for the
 * host's QEMU 10, whose fixtures keep their original names) and test titles.
 */
export interface QemuGeneration {
  key: '10' | '11';
  /** The command that runs qemu-system-x86_64 of this generation. */
  command: string[];
  /** Suffix of this generation's fixture names ('' = none). */
  fixtureSuffix: string;
  /** How to install it. */
  install: string;
}

export const GENERATIONS: readonly QemuGeneration[] = [
  { key: '10', command: [QEMU_BIN], fixtureSuffix: '', install: 'scripts/install-qemu.sh' },
  // QEMU 11 from trixie-backports, in the chroot scripts/install-qemu11.sh builds (MRAM_TRIXIE_ROOT).
  { key: '11', command: [path.join(REPO, 'scripts/trixie'), 'qemu-system-x86_64'], fixtureSuffix: '.qemu11', install: 'scripts/install-qemu11.sh' },
];

/** A generation by key ('10' or '11'). */
export function generation(key: QemuGeneration['key']): QemuGeneration {
  return GENERATIONS.find((g) => g.key === key)!;
}

// The generation in force: the default of startGuest/saveGuest/loadGuest/getFixture. describeQemu
// sets it while its suite is collected and before its tests run, and restores it afterwards.
let current: QemuGeneration = GENERATIONS[0]!;

/** The generation QEMU-backed helpers use when not told otherwise. */
export function currentGeneration(): QemuGeneration {
  return current;
}

/**
 * Generations describeQemu runs suites against: all of them; MRAM_QEMU_GENERATIONS=10 (or 11)
 * narrows a local run. With CI set every generation runs, whatever the variable says.
 */
export function testedGenerations(): readonly QemuGeneration[] {
  const only = process.env.MRAM_QEMU_GENERATIONS;
  if (!only || process.env.CI) return GENERATIONS;
  const keys = new Set(only.split(',').map((k) => k.trim()));
  return GENERATIONS.filter((g) => keys.has(g.key));
}

// ---------------------------------------------------------------- availability

const versions = new Map<QemuGeneration, string | null>();

/** "10.0.2" / "11.1.3", or null when that generation's QEMU is not runnable. */
export function qemuVersion(gen: QemuGeneration = current): string | null {
  if (versions.has(gen)) return versions.get(gen)!;
  const [cmd, ...pre] = gen.command;
  const r = spawnSync(cmd!, [...pre, '--version'], { encoding: 'utf8' });
  const m = r.status === 0 ? /QEMU emulator version (\d+\.\d+(?:\.\d+)?)/.exec(r.stdout) : null;
  const v = m ? m[1]! : null;
  versions.set(gen, v);
  return v;
}

/** True when the generation's QEMU runs and is >= 9.0. */
export function qemuAvailable(gen: QemuGeneration = current): boolean {
  const v = qemuVersion(gen);
  if (!v) return false;
  const [maj, min] = v.split('.').map(Number) as [number, number];
  return maj > MIN_QEMU[0] || (maj === MIN_QEMU[0] && min >= MIN_QEMU[1]);
}

/** Why a generation is missing, with the script that installs it. */
export function qemuMissingMessage(gen: QemuGeneration = current): string {
  return `QEMU ${gen.key} tests need ${gen.command.join(' ')} (run ${gen.install})`;
}

export const QEMU_MISSING_MESSAGE = qemuMissingMessage(GENERATIONS[0]);

/**
 * Decide whether QEMU-backed tests run. Returns true to skip (local run without QEMU,
 * message printed once). Throws when `process.env.CI` is set: a CI run that skips the
 * QEMU tests is not a pass.
 */
const skipNoticePrinted = new Set<QemuGeneration>();
export function requireQemuOrSkip(gen: QemuGeneration = current): boolean {
  if (qemuAvailable(gen)) return false;
  if (process.env.CI) throw new Error(`${qemuMissingMessage(gen)}; CI is set, refusing to skip`);
  if (!skipNoticePrinted.has(gen)) {
    skipNoticePrinted.add(gen);
    console.warn(`[mram] SKIPPING QEMU ${gen.key} tests: ${qemuMissingMessage(gen)}`);
  }
  return true;
}

/** "QEMU 11.1.3" (or "QEMU 11" when it is missing): the suffix of every describeQemu title. */
export function generationLabel(gen: QemuGeneration = current): string {
  return `QEMU ${qemuVersion(gen) ?? gen.key}`;
}

/**
 * `describe` for suites that need real QEMU, once per generation (title "NAME [QEMU 10.0.2]",
 * "NAME [QEMU 11.1.3]"); inside, the generation is the default of startGuest, saveGuest, loadGuest
 * and getFixture. A missing generation skips (with a printed message) locally and fails with CI set.
 */
export function describeQemu(name: string, fn: () => void): void {
  describeQemuOn(GENERATIONS.map((g) => g.key), name, fn);
}

/** describeQemu for the listed generations only (e.g. ['11'] for what QEMU 10 cannot write). */
export function describeQemuOn(keys: ReadonlyArray<QemuGeneration['key']>, name: string, fn: () => void): void {
  if (!vt) throw new Error('describeQemu is only usable inside vitest');
  const { describe, it, beforeAll, afterAll } = vt;
  for (const gen of testedGenerations().filter((g) => keys.includes(g.key))) {
    const title = `${name} [${generationLabel(gen)}]`;
    if (!qemuAvailable(gen) && process.env.CI) {
      describe(title, () => {
        it(`requires QEMU ${gen.key} (CI is set: skipping is a failure)`, () => {
          throw new Error(`${qemuMissingMessage(gen)}; CI is set, so "${title}" must not be skipped`);
        });
      });
      continue;
    }
    describe.skipIf(requireQemuOrSkip(gen))(title, () => {
      let before = current;
      beforeAll(() => {
        before = current;
        current = gen;
      });
      afterAll(() => {
        current = before;
      });
      const collecting = current;
      current = gen;
      try {
        fn();
      } finally {
        current = collecting;
      }
    });
  }
}

// ---------------------------------------------------------------- process bookkeeping

const live = new Set<ChildProcess>();
/** Host ends of exec: URIs of chroot guests (not QEMU processes: liveQemuCount leaves them out). */
const hostExecs = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const p of [...live, ...hostExecs]) {
      try {
        p.kill('SIGKILL');
      } catch {
        /* ignore */
      }
    }
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (os.constants.signals[sig] ?? 0));
    });
  }
}

const haveSetpriv = (() => {
  const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('pdeathsig');
})();

const liveGuests = new Set<Guest>();

/**
 * Kill every guest started by this module that is still alive (for afterAll/afterEach hooks:
 * a timed-out test never reaches its own finally). Process exit and, via setpriv --pdeathsig,
 * the death of this process also kill them.
 */
export async function killAllGuests(): Promise<number> {
  const gs = [...liveGuests];
  await Promise.all(gs.map((g) => g.kill()));
  return gs.length;
}

/** Number of QEMU processes started by this module that are still alive. */
export function liveQemuCount(): number {
  return live.size;
}

// ---------------------------------------------------------------- temp dirs

/** Fresh temp dir; `shm` puts it on /dev/shm (tmpfs) when available. */
export function makeTempDir(prefix = 'mram-', shm = false): string {
  const base = shm && fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return fs.mkdtempSync(path.join(base, prefix));
}

// ---------------------------------------------------------------- guests

export interface StartGuestOptions {
  /** Guest RAM in MiB (= size of the `mem` backend). */
  memMiB: number;
  /** File backing guest RAM (memory-backend-file, share=on). Default: fresh file in /dev/shm. */
  ramPath?: string;
  /** Start as a migration destination (`-incoming defer`). */
  incoming?: boolean;
  /** Raw disk image with a boot sector; the guest boots from it once `cont` is issued. */
  bootDisk?: string;
  /** Working dir for the QMP socket etc. Default: fresh temp dir (removed on kill()). */
  dir?: string;
  /** Extra QEMU arguments. */
  extraArgs?: string[];
  /** QEMU generation; default: the one in force (currentGeneration()). */
  generation?: QemuGeneration;
  /** Machine type (default "q35": the newest of the generation; e.g. "pc-q35-10.0" for both). */
  machine?: string;
}

export interface Guest {
  readonly proc: ChildProcess;
  readonly qmp: QmpClient;
  readonly dir: string;
  readonly ramPath: string;
  readonly memMiB: number;
  readonly args: string[];
  readonly generation: QemuGeneration;
  /** QEMU's stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 3 s; closes QMP; removes the temp dir if we made it. Idempotent. */
  kill(): Promise<void>;
}

export async function startGuest(opts: StartGuestOptions): Promise<Guest> {
  installExitHook();
  const gen = opts.generation ?? current;
  if (!qemuAvailable(gen)) throw new Error(qemuMissingMessage(gen));
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? makeTempDir('mram-qemu-');
  const ownShm = opts.ramPath === undefined;
  const ramPath = opts.ramPath ?? path.join(makeTempDir('mram-ram-', true), 'ram');
  const sock = path.join(dir, `qmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}.sock`);
  const m = opts.memMiB;
  const args = [
    '-machine', `${opts.machine ?? 'q35'},memory-backend=mem`,
    '-accel', 'tcg',
    '-m', `${m}M`,
    '-object', `memory-backend-file,id=mem,size=${m}M,mem-path=${ramPath},share=on`,
    '-nodefaults',
    '-display', 'none',
    '-serial', 'none',
    '-monitor', 'none',
    '-S',
    '-qmp', `unix:${sock},server=on,wait=off`,
  ];
  if (opts.bootDisk) args.push('-drive', `file=${opts.bootDisk},format=raw,if=ide,index=0,media=disk`);
  if (opts.incoming) args.push('-incoming', 'defer');
  if (opts.extraArgs) args.push(...opts.extraArgs);

  const [cmd, argv] = haveSetpriv
    ? ['setpriv', ['--pdeathsig', 'KILL', ...gen.command, ...args]]
    : [gen.command[0]!, [...gen.command.slice(1), ...args]];
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  let err = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    err += d;
  });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      exited = true;
      live.delete(proc);
      resolve();
    });
    proc.once('error', (e) => {
      err += `\nspawn error: ${e.message}`;
      exited = true;
      live.delete(proc);
      resolve();
    });
  });

  let killed = false;
  let guest: Guest | undefined;
  const kill = async () => {
    if (killed) return;
    killed = true;
    if (guest) liveGuests.delete(guest);
    qmp?.close();
    if (!exited) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exitPromise;
      clearTimeout(t);
    }
    fs.rmSync(sock, { force: true });
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
    if (ownShm) fs.rmSync(path.dirname(ramPath), { recursive: true, force: true });
  };

  let qmp: QmpClient | undefined;
  try {
    qmp = await Promise.race([
      QmpClient.connect(sock, 20_000),
      exitPromise.then(() => {
        throw new Error(`QEMU exited during startup: ${err.trim()}`);
      }),
    ]);
  } catch (e) {
    await kill();
    throw new Error(`startGuest failed: ${(e as Error).message}\nargs: ${args.join(' ')}\nstderr: ${err.trim()}`);
  }
  guest = { proc, qmp, dir, ramPath, memMiB: m, args, generation: gen, stderr: () => err, kill };
  liveGuests.add(guest);
  return guest;
}

/** Run `fn` with a guest, always killing it afterwards. */
export async function withGuest<T>(opts: StartGuestOptions, fn: (g: Guest) => Promise<T>): Promise<T> {
  const g = await startGuest(opts);
  try {
    return await fn(g);
  } finally {
    await g.kill();
  }
}

/**
 * Start a guest that boots `dirtierBootSector()` (guest-ram.ts) and keeps incrementing every
 * byte of 0x10000-0x9FFFF; resolves once the loop is observed running (RAM file changing).
 */
export async function startRunningGuest(opts: Omit<StartGuestOptions, 'bootDisk' | 'incoming'>): Promise<Guest> {
  const { writeDirtierDisk, DIRTY_RANGE } = await import('./guest-ram.js');
  const diskDir = makeTempDir('mram-boot-');
  const disk = path.join(diskDir, 'boot.img');
  writeDirtierDisk(disk);
  const g = await startGuest({ ...opts, bootDisk: disk });
  const origKill = g.kill;
  const guest: Guest = {
    ...g,
    stderr: g.stderr,
    kill: async () => {
      await origKill();
      fs.rmSync(diskDir, { recursive: true, force: true });
    },
  };
  try {
    await g.qmp.execute('cont');
    const fd = fs.openSync(g.ramPath, 'r');
    try {
      const probe = () => {
        const b = Buffer.alloc(4);
        fs.readSync(fd, b, 0, 4, DIRTY_RANGE.end - 4096);
        return b.readUInt32LE(0);
      };
      const deadline = Date.now() + 60_000;
      let changes = 0;
      let last = probe();
      while (changes < 3) {
        if (Date.now() > deadline) throw new Error('running guest: boot sector loop not observed within 60 s');
        if (g.proc.exitCode !== null) throw new Error(`running guest died: ${g.stderr()}`);
        await sleep(20);
        const v = probe();
        if (v !== last) changes++;
        last = v;
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    await guest.kill();
    throw e;
  }
  return guest;
}

// ---------------------------------------------------------------- migration helpers

export type ZeroPageDetection = 'none' | 'legacy' | 'multifd';

export interface MigrationConfig {
  mappedRam: boolean;
  /** Number of multifd channels; 0/undefined = multifd off. */
  multifd?: number;
  directIo?: boolean;
  zeroPageDetection?: ZeroPageDetection;
  /** x-ignore-shared: shared memory-backend-file blocks are left out (the destination maps the same file). */
  ignoreShared?: boolean;
}

/** QEMU's query-migrate result (only the parts we use are typed). */
export interface MigrateInfo {
  status: string;
  'error-desc'?: string;
  'total-time'?: number;
  downtime?: number;
  'setup-time'?: number;
  ram?: {
    total: number;
    transferred: number;
    remaining: number;
    duplicate: number;
    normal: number;
    'normal-bytes': number;
    'dirty-sync-count': number;
    'dirty-pages-rate'?: number;
    'pages-per-second'?: number;
    'mbps'?: number;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export async function configureMigration(qmp: QmpClient, c: MigrationConfig): Promise<void> {
  const caps = [
    { capability: 'mapped-ram', state: c.mappedRam },
    { capability: 'multifd', state: (c.multifd ?? 0) > 0 },
  ];
  if (c.ignoreShared) caps.push({ capability: 'x-ignore-shared', state: true });
  await qmp.execute('migrate-set-capabilities', { capabilities: caps });
  const params: Record<string, unknown> = {};
  if ((c.multifd ?? 0) > 0) params['multifd-channels'] = c.multifd;
  if (c.directIo !== undefined) params['direct-io'] = c.directIo;
  if (c.zeroPageDetection !== undefined) params['zero-page-detection'] = c.zeroPageDetection;
  if (Object.keys(params).length) await qmp.execute('migrate-set-parameters', params);
}

export function fileUri(file: string, offset?: number): string {
  if (file.includes(',')) throw new Error(`file: URI cannot contain ',': ${file}`);
  return offset ? `file:${file},offset=${offset}` : `file:${file}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pollMigration(
  g: Guest,
  timeoutMs: number,
  onPoll?: (info: MigrateInfo) => Promise<void> | void,
): Promise<MigrateInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await g.qmp.execute<MigrateInfo>('query-migrate');
    if (info.status === 'completed') return info;
    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new Error(`migration ${info.status}: ${info['error-desc'] ?? '(no error-desc)'}\nstderr: ${g.stderr().trim()}`);
    }
    if (onPoll) await onPoll(info);
    if (Date.now() > deadline) throw new Error(`migration timed out in state ${info.status}`);
    await sleep(20);
  }
}

/**
 * An `exec:` URI for a guest of another root: QEMU 11 runs in the trixie chroot, which has no
 * node (nor mram), so the command runs on the host and QEMU's end is `cat` through a FIFO in
 * /tmp (visible in both). `direction` is QEMU's: 'out' for migrate, 'in' for migrate-incoming.
 * Host QEMU gets the URI as it is.
 */
function execOnHost(g: Guest, uri: string, direction: 'out' | 'in'): { uri: string; release: () => void } {
  if (g.generation === GENERATIONS[0] || !uri.startsWith('exec:')) return { uri, release: () => undefined };
  const dir = makeTempDir('mram-exec-');
  const fifo = path.join(dir, 'pipe');
  const mk = spawnSync('mkfifo', [fifo]);
  if (mk.status !== 0) throw new Error(`mkfifo ${fifo} failed: ${mk.stderr}`);
  const cmd = uri.slice('exec:'.length);
  const host = spawn('sh', ['-c', direction === 'out' ? `${cmd} < "$0"` : `${cmd} > "$0"`, fifo], { stdio: 'ignore' });
  hostExecs.add(host);
  host.once('exit', () => {
    hostExecs.delete(host);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    uri: direction === 'out' ? `exec:cat > ${fifo}` : `exec:cat ${fifo}`,
    // A host command still blocked on the FIFO (QEMU never opened it) is ended with the guest.
    release: () => {
      if (host.exitCode === null && g.proc.exitCode !== null) host.kill('SIGKILL');
    },
  };
}

export interface SaveOptions extends MigrationConfig {
  /** RAM file to save (a source guest is started on it and killed afterwards)... */
  ramPath?: string;
  /** ...or an already started guest (left alive, in postmigrate). */
  guest?: Guest;
  /** Output file (file: URI). */
  out?: string;
  /** Arbitrary migration URI (e.g. `exec:cat > x`) instead of `out`. */
  uri?: string;
  offset?: number;
  /** Resume the guest (`cont`) before migrating (live save). */
  running?: boolean;
  /**
   * For running guests: keep `downtime-limit` at 1 ms until this many dirty syncs have
   * happened, then allow convergence. Forces pages to be sent several times.
   */
  minDirtySyncs?: number;
  memMiB?: number;
  timeoutMs?: number;
  /** For a source started here: QEMU generation (default: the one in force) and machine type. */
  generation?: QemuGeneration;
  machine?: string;
}

export interface SaveResult {
  out: string | undefined;
  uri: string;
  stats: MigrateInfo;
  /** Final run state of the source (normally "postmigrate"). */
  runState: string;
  wallMs: number;
}

export async function saveGuest(o: SaveOptions): Promise<SaveResult> {
  if (!o.guest && !o.ramPath) throw new Error('saveGuest: need ramPath or guest');
  const uri = o.uri ?? fileUri(o.out ?? '', o.offset);
  if (!o.uri && !o.out) throw new Error('saveGuest: need out or uri');
  if ((o.multifd ?? 0) > 0 && !o.mappedRam && uri.startsWith('file:'))
    throw new Error('saveGuest: file: transport with multifd requires mapped-ram');
  const memMiB = o.memMiB ?? (o.ramPath ? Math.round(fs.statSync(o.ramPath).size / 2 ** 20) : 0);
  const g = o.guest ?? (await startGuest({ memMiB, ramPath: o.ramPath!, generation: o.generation, machine: o.machine }));
  let releaseExec = () => undefined as void;
  try {
    await configureMigration(g.qmp, o);
    // Force several dirty-sync rounds. QEMU switches over when the pending dirty bytes fit in
    // threshold = bandwidth x downtime-limit, and skips the exact (bitmap-syncing) pending check
    // when the threshold is 0 -- which happens whenever a 100 ms window only scanned zero pages
    // (measured bandwidth 0). So: fix the bandwidth used for the threshold
    // (avail-switchover-bandwidth, 1 MiB/s -> ~1 KiB at 1 ms), cap the real bandwidth so the
    // first pass spans several windows, and release both once enough syncs happened.
    if (o.minDirtySyncs) {
      await g.qmp.execute('migrate-set-parameters', {
        'downtime-limit': 1,
        'max-bandwidth': 4 << 20,
        'avail-switchover-bandwidth': 1 << 20,
      });
    }
    if (o.running) {
      const st = await g.qmp.execute<{ status: string }>('query-status');
      if (st.status !== 'running') await g.qmp.execute('cont');
    }
    const t0 = performance.now();
    const exec = execOnHost(g, uri, 'out');
    releaseExec = exec.release;
    await g.qmp.execute('migrate', { uri: exec.uri });
    let released = !o.minDirtySyncs;
    const stats = await pollMigration(g, o.timeoutMs ?? 120_000, async (info) => {
      if (!released && (info.ram?.['dirty-sync-count'] ?? 0) >= o.minDirtySyncs!) {
        released = true;
        await g.qmp.execute('migrate-set-parameters', {
          'downtime-limit': 60_000,
          'max-bandwidth': 2 ** 40,
          'avail-switchover-bandwidth': 0,
        });
      }
    });
    const wallMs = performance.now() - t0;
    const st = await g.qmp.execute<{ status: string }>('query-status');
    return { out: o.out, uri, stats, runState: st.status, wallMs };
  } finally {
    if (!o.guest) await g.kill();
    releaseExec();
  }
}

export interface LoadOptions {
  file?: string;
  /** Arbitrary incoming URI (e.g. `exec:cat x`) instead of `file`. */
  uri?: string;
  mappedRam: boolean;
  multifd?: number;
  directIo?: boolean;
  offset?: number;
  memMiB: number;
  /** Destination RAM file; default: fresh file in /dev/shm, removed afterwards. */
  ramPath?: string;
  timeoutMs?: number;
  /** Keep the destination guest alive and return it (caller must kill it). */
  keep?: boolean;
  /** x-ignore-shared on the destination (give `ramPath`: the shared memory the source used). */
  ignoreShared?: boolean;
  /** QEMU generation (default: the one in force) and machine type of the destination. */
  generation?: QemuGeneration;
  machine?: string;
}

export interface LoadResult {
  /** Destination guest RAM (`mem` block) after the load. */
  ram: Buffer;
  stats: MigrateInfo;
  runState: string;
  wallMs: number;
  guest?: Guest;
}

export async function loadGuest(o: LoadOptions): Promise<LoadResult> {
  const uri = o.uri ?? fileUri(o.file ?? '', o.offset);
  if (!o.uri && !o.file) throw new Error('loadGuest: need file or uri');
  const g = await startGuest({ memMiB: o.memMiB, ramPath: o.ramPath, incoming: true, generation: o.generation, machine: o.machine });
  let releaseExec = () => undefined as void;
  try {
    await configureMigration(g.qmp, { mappedRam: o.mappedRam, multifd: o.multifd, directIo: o.directIo, ignoreShared: o.ignoreShared });
    const t0 = performance.now();
    const exec = execOnHost(g, uri, 'in');
    releaseExec = exec.release;
    await g.qmp.execute('migrate-incoming', { uri: exec.uri });
    const deadline = Date.now() + (o.timeoutMs ?? 120_000);
    let stats: MigrateInfo;
    let runState: string;
    for (;;) {
      if (g.qmp.isClosed || g.proc.exitCode !== null) {
        throw new Error(`destination QEMU died during load: ${g.stderr().trim()}`);
      }
      stats = await g.qmp.execute<MigrateInfo>('query-migrate');
      runState = (await g.qmp.execute<{ status: string }>('query-status')).status;
      if (stats.status === 'failed' || runState === 'inmigrate' && stats.status === 'failed') {
        throw new Error(`incoming migration failed: ${stats['error-desc'] ?? ''}\nstderr: ${g.stderr().trim()}`);
      }
      if (stats.status === 'completed' && runState !== 'inmigrate') break;
      if (Date.now() > deadline) throw new Error(`load timed out (status ${stats.status}, runstate ${runState})`);
      await sleep(20);
    }
    const wallMs = performance.now() - t0;
    const ram = fs.readFileSync(g.ramPath);
    return { ram, stats, runState, wallMs, guest: o.keep ? g : undefined };
  } catch (e) {
    // QEMU exits on a failed incoming migration; surface its stderr
    await sleep(100);
    const msg = (e as Error).message;
    throw new Error(msg.includes('stderr:') ? msg : `${msg}\nstderr: ${g.stderr().trim()}`);
  } finally {
    if (!o.keep) await g.kill();
    releaseExec();
  }
}

export { QmpClient, QmpError };
