// The long-running fuzz campaign (not part of `npm test`; the quick fuzz lives in test/fuzz).
//
//   nice -n 10 npx vite-node scripts/fuzz-campaign.ts -- --qemu 10 [--minutes 60] [--work .cache/fuzz]
//   nice -n 10 npx vite-node scripts/fuzz-campaign.ts -- --qemu 11      (QEMU 11 from the trixie chroot)
//   ... --shard 1/2   runs every second mutant from index 1 (one process per core; own stats file)
//
// Saves small real guests with the chosen QEMU (mapped-ram, multifd, plain stream, live saves of a
// running guest, libvirt-wrapped sparse, raw and zstd-compressed saves, savevm snapshots in a qcow2
// image with a stream or a mapped-ram VM state), then mutates them for ever (or --minutes /
// --mutants): every mram command runs on each mutant as a subprocess (bin/mram.js, so build first)
// with a time limit and an RSS cap. Judged: no crash or stack trace, no hang, bounded memory, and no
// exit 0 whose result differs from what QEMU's own loader makes of the same mutant (-incoming defer,
// loadvm for a qcow2 image, `zstd -dc` first for a compressed save, as libvirt does; RAM compared
// through the memory-backend-file on /dev/shm; a converted output is loaded too).
// State lives in WORK/qemu-VERSION/: stats.json (counts per command; a rerun continues from its
// next index), findings/SIGNATURE/ (first mutant of each distinct finding, minimised: mutant.mig.gz
// + finding.json). `--export` copies the findings into test/fixtures/fuzz for the replay test.
// MRAM_BIN=/path/to/frozen/bin/mram.js runs a copy of the build, so the clone can be rebuilt meanwhile.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import { decodeLibvirtFixed, isLibvirtMagic } from '../src/codec/libvirt.js';
import { LIBVIRT_HEADER_SIZE } from '../src/format/constants.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    qemu: { type: 'string', default: '10' },
    work: { type: 'string', default: '.cache/fuzz' },
    minutes: { type: 'string' },
    mutants: { type: 'string' },
    'mem-mib': { type: 'string', default: '16' },
    'timeout-s': { type: 'string', default: '60' },
    shard: { type: 'string', default: '0/1' },
    export: { type: 'boolean', default: false },
  },
});

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const qemu = await import('../test/support/qemu.js');
if (values.qemu !== '10' && values.qemu !== '11') throw new Error(`--qemu: expected 10 or 11, got ${values.qemu}`);
const gen = qemu.generation(values.qemu);
const genNumber = Number(values.qemu) as 10 | 11;
const c = await import('../test/support/campaign.js');
const { writeGuestRam } = await import('../test/support/guest-ram.js');
const { buildLibvirtHeader, setLibvirtMagic, LibvirtFormat } = await import('../test/support/libvirt-header.js');
const { buildSnapshotImage, loadFile, loadvm } = await import('../test/support/qcow2.js');
type Seed = import('../test/support/campaign.js').Seed;
type Finding = import('../test/support/campaign.js').Finding;
type Mutation = import('../test/support/campaign.js').Mutation;
type QemuVerdict = import('../test/support/campaign.js').QemuVerdict;
type CommandName = import('../test/support/campaign.js').CommandName;
type CommandOutcome = import('../test/support/campaign.js').CommandOutcome;

const version = qemu.qemuVersion(gen);
if (!version) throw new Error(`no runnable QEMU for --qemu ${values.qemu}`);
const memMiB = Number(values['mem-mib']);
const work = path.resolve(REPO, values.work!, `qemu-${version}`);
const seedDir = path.join(work, 'seeds');
const findingsDir = path.join(work, 'findings');
const scratch = qemu.makeTempDir('mram-campaign-');
fs.mkdirSync(seedDir, { recursive: true });
fs.mkdirSync(findingsDir, { recursive: true });
const limits = { timeoutMs: Number(values['timeout-s']) * 1000, rssCapKiB: 2 * 2 ** 20 };
/** Above this peak RSS a command's memory counts as unbounded for a guest of memMiB (KiB). */
const RSS_LIMIT_KIB = 512 * 1024;
const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)} qemu ${version}] ${s}`);
/** Set once the loop runs: a stop keeps the counts of every mutant judged so far. */
let saveStats = () => undefined as void;
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => {
  saveStats();
  fs.rmSync(scratch, { recursive: true, force: true });
  process.exit(130);
});

if (values.export) {
  await exportFindings();
  process.exit(0);
}

// ---------------------------------------------------------------- seeds

interface SeedSpec {
  name: string;
  kind: Seed['kind'];
  mappedRam: boolean;
  multifd?: number;
  running?: boolean;
  /** libvirt header format (6 sparse = mapped-ram saves, 0 raw = plain streams, 5 zstd). */
  libvirt?: number;
  /** The stream after the libvirt header goes through this compressor (libvirt's zstd format). */
  compressed?: 'zstd';
  /** A savevm into a qcow2 image under this snapshot name instead of a migration file. */
  snapshot?: string;
}

const SEEDS: SeedSpec[] = [
  { name: 'mr', kind: 'mapped-ram', mappedRam: true },
  { name: 'mr-mfd', kind: 'mapped-ram', mappedRam: true, multifd: 2 },
  { name: 'stream', kind: 'stream', mappedRam: false },
  { name: 'mr-live', kind: 'mapped-ram', mappedRam: true, running: true },
  { name: 'stream-live', kind: 'stream', mappedRam: false, running: true },
  { name: 'libvirt-mr', kind: 'libvirt', mappedRam: true, multifd: 1, libvirt: LibvirtFormat.sparse },
  { name: 'libvirt-stream', kind: 'libvirt', mappedRam: false, libvirt: LibvirtFormat.raw },
  { name: 'libvirt-zstd', kind: 'compressed', mappedRam: false, libvirt: LibvirtFormat.zstd, compressed: 'zstd' },
  { name: 'qcow2-stream', kind: 'qcow2', mappedRam: false, snapshot: 'snap' },
  { name: 'qcow2-mr', kind: 'qcow2', mappedRam: true, snapshot: 'snap' },
];

/** A qcow2 image holding one internal snapshot `s.snapshot` saved by this QEMU (its own guest size). */
async function makeSnapshotSeed(s: SeedSpec, tmp: string): Promise<number> {
  const meta = await buildSnapshotImage({ name: s.name, gen: genNumber, options: 'compat=1.1', saves: [{ name: s.snapshot!, seed: 7, mappedRam: s.mappedRam }] }, tmp);
  return meta.memMiB;
}

/** Header (zstd format) + the QEMU stream compressed by `zstd -c`, as libvirt writes a compressed save. */
function compressInto(tmp: string, stream: string): void {
  const z = spawnSync('zstd', ['-c', '-q', stream], { maxBuffer: 1 << 30 });
  if (z.status !== 0) throw new Error(`zstd: ${z.stderr}`);
  fs.appendFileSync(tmp, z.stdout);
}

async function makeSeed(s: SeedSpec): Promise<Seed | null> {
  const file = path.join(seedDir, `${s.name}.mig`);
  const metaFile = `${file}.json`;
  if (fs.existsSync(metaFile)) return JSON.parse(fs.readFileSync(metaFile, 'utf8')) as Seed;
  const shm = qemu.makeTempDir('mram-campaign-ram-', true);
  const ramPath = path.join(shm, 'ram');
  // Saved and checked in scratch (under /tmp), like the mutants: the oracle only ever opens files there.
  const tmp = path.join(scratch, `${s.name}.mig`);
  let offset = 0;
  let seedMiB = memMiB;
  try {
    fs.rmSync(tmp, { force: true });
    if (s.libvirt !== undefined) {
      const h = buildLibvirtHeader({ part: true, format: s.libvirt });
      fs.writeFileSync(tmp, h.bytes);
      offset = h.qemuOffset;
    }
    if (s.snapshot) seedMiB = await makeSnapshotSeed(s, tmp);
    else {
      if (!s.running) writeGuestRam(ramPath, memMiB, 7);
      const guest = s.running ? await qemu.startRunningGuest({ memMiB, ramPath, generation: gen }) : await qemu.startGuest({ memMiB, ramPath, generation: gen });
      const stream = `${tmp}.stream`;
      try {
        if (s.compressed) await qemu.saveGuest({ guest, out: stream, mappedRam: false, running: s.running });
        else await qemu.saveGuest({ guest, out: tmp, offset: offset || undefined, mappedRam: s.mappedRam, multifd: s.multifd, running: s.running, minDirtySyncs: s.running ? 3 : undefined });
      } finally {
        await guest.kill();
      }
      if (s.compressed) {
        compressInto(tmp, stream);
        fs.rmSync(stream, { force: true });
      }
    }
    if (s.libvirt !== undefined) setLibvirtMagic(tmp, true);
  } catch (e) {
    log(`seed ${s.name}: not made: ${(e as Error).message.split('\n')[0]}`);
    fs.rmSync(tmp, { force: true });
    return null;
  } finally {
    fs.rmSync(shm, { recursive: true, force: true });
  }
  const load = { mappedRam: s.mappedRam, multifd: s.multifd, offset: offset || undefined, snapshot: s.snapshot, compressed: s.compressed };
  const seed: Seed = { name: s.name, kind: s.kind, qemuVersion: version!, file, memMiB: seedMiB, load };
  // A seed is usable when QEMU loads it and mram extracts the same RAM.
  const truth = await qemuLoad(tmp, seed);
  const dir = fs.mkdtempSync(path.join(scratch, 'seed-'));
  const ex = await c.runMram(c.commandsFor(tmp, dir, seed.load.snapshot).extract, limits, scratch);
  const agree = truth.loads === true && ex.code === 0 && c.sha256File(path.join(dir, 'mem.ram')) === truth.ramSha256;
  fs.rmSync(dir, { recursive: true, force: true });
  if (agree) writeSparseFile(file, fs.readFileSync(tmp));
  fs.rmSync(tmp, { force: true });
  if (!agree) {
    log(`seed ${s.name}: QEMU and mram disagree on the pristine file (${truth.loads ? '' : (truth as { error: string }).error} ${c.firstLine(ex.stderr)}); dropped`);
    return null;
  }
  fs.writeFileSync(metaFile, JSON.stringify(seed, null, 2) + '\n');
  return seed;
}

// ---------------------------------------------------------------- the oracle

const verdicts = new Map<string, QemuVerdict>();

/** QEMU's reading of `file` (cached by content). */
/** Where the QEMU stream of a file with a libvirt header starts (undefined without one). */
function libvirtDataOffset(file: string): number | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const head = new Uint8Array(LIBVIRT_HEADER_SIZE);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    return n >= 16 && isLibvirtMagic(head) ? decodeLibvirtFixed(head.subarray(0, n), fs.fstatSync(fd).size).dataOffset : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** QEMU's reading of `file` as `seed` is read (cached by content): a migration file, a qcow2 snapshot (loadvm), or a compressed save. */
function qemuLoad(file: string, seed: Pick<Seed, 'load' | 'memMiB'>): Promise<QemuVerdict> {
  return verdictOf(`${c.sha256File(file)}/${JSON.stringify(seed.load)}`, () => qemuRam(file, seed));
}

/** A load's verdict (cached by `key`): the RAM's SHA-256, QEMU's refusal, or unknown (QEMU did not answer). */
async function verdictOf(key: string, load: () => Promise<Buffer>): Promise<QemuVerdict> {
  const hit = verdicts.get(key);
  if (hit) return hit;
  let v: QemuVerdict;
  try {
    v = { loads: true, ramSha256: c.sha256(await load()) };
  } catch (e) {
    const msg = (e as Error).message;
    const qemuLines = msg.split('\n').filter((l) => /qemu-system-x86_64: |^loadvm |^zstd: /.test(l)).map((l) => l.replace(/^.*?qemu-system-x86_64: /, ''));
    if (/timed out|startGuest failed|spawn E[A-Z]+/.test(msg) && !qemuLines.length) v = { loads: null, error: msg.split('\n')[0]! };
    else v = { loads: false, error: qemuLines.slice(0, 2).join(' | ') || msg.split('\n')[0]! };
  }
  if (verdicts.size > 500) verdicts.delete(verdicts.keys().next().value!);
  verdicts.set(key, v);
  return v;
}

async function qemuRam(file: string, { load, memMiB }: Pick<Seed, 'load' | 'memMiB'>): Promise<Buffer> {
  if (load.snapshot) {
    // loadvm opens the image read-write: QEMU gets a copy, the mutant stays as mram saw it.
    const copy = path.join(scratch, 'loadvm.qcow2');
    fs.copyFileSync(file, copy);
    try {
      return await loadvm(copy, load.snapshot, load.mappedRam, memMiB, genNumber, 60_000);
    } finally {
      fs.rmSync(copy, { force: true });
    }
  }
  if (load.compressed) {
    // libvirt pipes the payload after its header through the decompressor into QEMU.
    const plain = path.join(scratch, 'decompressed.mig');
    const fd = fs.openSync(file, 'r');
    try {
      const z = spawnSync('sh', ['-c', `tail -c +${(load.offset ?? 0) + 1} | ${load.compressed} -dc > ${plain}`], { stdio: [fd, 'ignore', 'pipe'], timeout: 60_000 });
      if (z.status !== 0) throw new Error(`${load.compressed}: ${z.stderr.toString().trim().split('\n')[0] ?? 'failed'}`);
      return (await qemu.loadGuest({ generation: gen, file: plain, mappedRam: false, memMiB, timeoutMs: 60_000 })).ram;
    } finally {
      fs.closeSync(fd);
      fs.rmSync(plain, { force: true });
    }
  }
  return (await qemu.loadGuest({ generation: gen, file, mappedRam: load.mappedRam, multifd: load.multifd, offset: load.offset, memMiB, timeoutMs: 60_000 })).ram;
}

// ---------------------------------------------------------------- one mutant

interface Judged {
  findings: Finding[];
  outcomes: Partial<Record<CommandName, CommandOutcome>>;
  truth: QemuVerdict | null;
  oracleRuns: number;
}

async function judge(seed: Seed, mutant: string, only?: CommandName[]): Promise<Judged> {
  const dir = fs.mkdtempSync(path.join(scratch, 'm-'));
  try {
    const cmds = c.commandsFor(mutant, dir, seed.load.snapshot);
    const outcomes: Partial<Record<CommandName, CommandOutcome>> = {};
    const findings: Finding[] = [];
    for (const name of only ?? c.COMMAND_NAMES) {
      const o = await c.runMram([...cmds[name]], limits, scratch);
      outcomes[name] = o;
      findings.push(...c.processFindings(name, o, RSS_LIMIT_KIB));
    }
    let truth: QemuVerdict | null = null;
    let oracleRuns = 0;
    const oracle = async () => {
      if (!truth) {
        truth = await qemuLoad(mutant, seed);
        oracleRuns++;
      }
      return truth;
    };
    const refused = (name: CommandName, t: QemuVerdict) => findings.push({ kind: 'accepts-what-qemu-refuses', command: name, detail: (t as { error: string }).error });
    if (outcomes.extract?.code === 0) {
      const t = await oracle();
      if (t.loads === false) refused('extract', t);
      else if (t.loads === true && c.sha256File(path.join(dir, 'mem.ram')) !== t.ramSha256) findings.push({ kind: 'differs-from-qemu', command: 'extract', detail: 'mem image differs from the RAM QEMU loads' });
    }
    if (outcomes.verify?.code === 0) {
      const t = await oracle();
      if (t.loads === false) refused('verify', t);
      else if (t.loads === true && c.verifyDigest(outcomes.verify) !== t.ramSha256) findings.push({ kind: 'differs-from-qemu', command: 'verify', detail: 'mem digest differs from the RAM QEMU loads' });
    }
    for (const [name, out, mappedRam] of [['convert-mapped-ram', 'out.mram', true], ['convert-stream', 'out.mig', false]] as const) {
      if (outcomes[name]?.code !== 0) continue;
      const t = await oracle();
      if (t.loads === false) {
        refused(name, t);
        continue;
      }
      if (t.loads !== true) continue;
      // A libvirt save converts to a libvirt save: QEMU reads its stream at the header's data offset.
      const o = await outputLoad(seed, path.join(dir, out), mappedRam);
      oracleRuns++;
      if (o.loads === false) findings.push({ kind: 'output-qemu-refuses', command: name, detail: o.error });
      else if (o.loads === true && o.ramSha256 !== t.ramSha256) findings.push({ kind: 'differs-from-qemu', command: name, detail: 'QEMU loads other RAM from the output than from the input' });
    }
    return { findings, outcomes, truth, oracleRuns };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * QEMU's reading of a converted output. A snapshot's output loads into the guest that took the
 * snapshot (same devices, its pristine disk); a libvirt save's at the header's data offset.
 */
function outputLoad(seed: Seed, out: string, mappedRam: boolean): Promise<QemuVerdict> {
  if (!seed.load.snapshot) return qemuLoad(out, { memMiB: seed.memMiB, load: { mappedRam, offset: libvirtDataOffset(out) } });
  const disk = path.join(scratch, `disk-${seed.name}.qcow2`);
  if (!fs.existsSync(disk)) fs.copyFileSync(seed.file, disk);
  return verdictOf(`${c.sha256File(out)}/${mappedRam}/${seed.name}`, () => loadFile(out, mappedRam, seed.memMiB, disk, genNumber, 60_000));
}

/** One minimisation per mutant, whichever command's finding asked first. */
const minimised = new WeakMap<Mutation[], Mutation[]>();

/** Drops mutations one at a time while the finding stays (delta debugging, one pass). */
async function minimise(seed: Seed, pristine: Buffer, ms: Mutation[], sig: string, command: CommandName): Promise<Mutation[]> {
  let cur = ms;
  if (cur.length > 1 && minimised.has(ms)) return minimised.get(ms)!;
  for (let i = cur.length - 1; i >= 0 && cur.length > 1; i--) {
    const trial = cur.filter((_, k) => k !== i);
    const file = writeMutant(pristine, trial, 'min');
    const j = await judge(seed, file, [command]);
    if (j.findings.some((f) => c.signature(f) === sig)) cur = trial;
  }
  minimised.set(ms, cur);
  return cur;
}

function writeMutant(pristine: Buffer, ms: Mutation[], tag: string): string {
  const file = path.join(scratch, `mutant-${tag}.mig`);
  // (scratch is this process's own directory: shards never share a mutant file)
  fs.rmSync(file, { force: true });
  writeSparseFile(file, c.applyMutations(pristine, ms));
  return file;
}

function writeSparseFile(file: string, b: Buffer): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, b.length);
    for (let i = 0; i < b.length; i += 4096) {
      const chunk = b.subarray(i, i + 4096);
      if (chunk.some((x) => x !== 0)) fs.writeSync(fd, chunk, 0, chunk.length, i);
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- the loop

interface Stats {
  qemuVersion: string;
  nextIndex: number;
  mutants: number;
  runs: Record<string, number>;
  exit0: Record<string, number>;
  oracleLoads: number;
  judgedAgainstQemu: number;
  oracleUnknown: number;
  findings: Record<string, number>;
  seeds: string[];
  /** Mutants per seed (every command ran on each). */
  bySeed?: Record<string, number>;
}

const [shard, shards] = values.shard!.split('/').map(Number) as [number, number];
const statsFile = path.join(work, shards === 1 ? 'stats.json' : `stats-${shard}-of-${shards}.json`);
const stats: Stats = fs.existsSync(statsFile)
  ? (JSON.parse(fs.readFileSync(statsFile, 'utf8')) as Stats)
  : { qemuVersion: version, nextIndex: shard, mutants: 0, runs: {}, exit0: {}, oracleLoads: 0, judgedAgainstQemu: 0, oracleUnknown: 0, findings: {}, seeds: [] };

const seeds: Seed[] = [];
for (const s of SEEDS) {
  const seed = await makeSeed(s);
  if (seed) seeds.push(seed);
}
if (!seeds.length) throw new Error('no usable seed');
stats.seeds = seeds.map((s) => s.name);
log(`seeds: ${stats.seeds.join(', ')}; continuing at index ${stats.nextIndex}`);
const prepared = await Promise.all(seeds.map(async (s) => ({ seed: s, pristine: fs.readFileSync(s.file), structure: await c.structureOf(s) })));

saveStats = () => fs.writeFileSync(statsFile, JSON.stringify(stats, null, 2) + '\n');
const deadline = values.minutes ? Date.now() + Number(values.minutes) * 60_000 : Infinity;
const stopAt = values.mutants ? stats.nextIndex + Number(values.mutants) * shards : Infinity;
while (Date.now() < deadline && stats.nextIndex < stopAt) {
  const i = stats.nextIndex;
  const { seed, pristine, structure } = prepared[i % prepared.length]!;
  const index = Math.floor(i / prepared.length);
  const ms = c.mutationsFor(pristine, structure, seed.name, index);
  const file = writeMutant(pristine, ms, 'cur');
  const j = await judge(seed, file);
  stats.mutants++;
  stats.bySeed = { ...stats.bySeed, [seed.name]: (stats.bySeed?.[seed.name] ?? 0) + 1 };
  for (const [name, o] of Object.entries(j.outcomes)) {
    stats.runs[name] = (stats.runs[name] ?? 0) + 1;
    if (o.code === 0) stats.exit0[name] = (stats.exit0[name] ?? 0) + 1;
  }
  stats.oracleLoads += j.oracleRuns;
  if (j.truth) (j.truth as QemuVerdict).loads === null ? stats.oracleUnknown++ : stats.judgedAgainstQemu++;
  for (const f of j.findings) {
    const sig = c.signature(f);
    stats.findings[sig] = (stats.findings[sig] ?? 0) + 1;
    const id = c.sha256(Buffer.from(sig)).slice(0, 12);
    const dir = path.join(findingsDir, id);
    if (fs.existsSync(dir)) continue;
    log(`NEW ${sig}  (${seed.name} #${index})`);
    const min = await minimise(seed, pristine, ms, sig, f.command);
    const mutant = c.applyMutations(pristine, min);
    const again = await judge(seed, writeMutant(pristine, min, 'rep'));
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'mutant.mig.gz'), zlib.gzipSync(mutant, { level: 9 }));
    fs.writeFileSync(
      path.join(dir, 'finding.json'),
      JSON.stringify(
        {
          signature: sig,
          finding: f,
          seed: { name: seed.name, kind: seed.kind, qemuVersion: seed.qemuVersion, load: seed.load, memMiB: seed.memMiB },
          index,
          mutations: min,
          qemu: again.truth,
          outcomes: Object.fromEntries(Object.entries(again.outcomes).map(([k, o]) => [k, { code: o.code, stderr: c.firstLine(o.stderr).slice(0, 300) }])),
          reproduced: again.findings.some((g) => c.signature(g) === sig),
          found: new Date().toISOString(),
        },
        null,
        2,
      ) + '\n',
    );
  }
  stats.nextIndex += shards;
  if (stats.mutants % 10 === 0 || j.findings.length) fs.writeFileSync(statsFile, JSON.stringify(stats, null, 2) + '\n');
  if (stats.mutants % 100 === 0) log(`${stats.mutants} mutants (${Object.entries(stats.runs).map(([k, v]) => `${k} ${v}`).join(', ')}), ${Object.keys(stats.findings).length} distinct findings`);
}
fs.writeFileSync(statsFile, JSON.stringify(stats, null, 2) + '\n');
log(`stopped at index ${stats.nextIndex}: ${JSON.stringify(stats.runs)}`);
fs.rmSync(scratch, { recursive: true, force: true });
await qemu.killAllGuests();

/**
 * Copies the findings into test/fixtures/fuzz/ for the replay test: the seeds they mutate (gzip)
 * and one JSON per distinct mutant (its mutations, QEMU's verdict, every finding on it, a status).
 * The status is the replay's judgement of this clone's build (bin/mram.js) on the mutant: "fixed"
 * (nothing wrong any more), "beyond-format" (only successes on a file QEMU refuses, for device
 * state whose rules only the device knows, and verify finds nothing: the replay then checks only
 * that nothing crashes), else "open" (crash, hang, memory, other RAM than QEMU, or a success on a
 * file verify itself rates damaged).
 */
async function exportFindings(): Promise<void> {
  const dest = path.join(REPO, 'test/fixtures/fuzz');
  const major = version!.split('.')[0];
  fs.mkdirSync(path.join(dest, 'seeds'), { recursive: true });
  const byMutant = new Map<string, { json: Record<string, unknown>; findings: Finding[] }>();
  for (const id of fs.readdirSync(findingsDir).sort()) {
    const f = JSON.parse(fs.readFileSync(path.join(findingsDir, id, 'finding.json'), 'utf8'));
    if (!f.reproduced) continue;
    const key = `${f.seed.name}/${JSON.stringify(f.mutations)}`;
    const entry = byMutant.get(key) ?? { json: f as Record<string, unknown>, findings: [] as Finding[] };
    entry.findings.push(f.finding);
    byMutant.set(key, entry);
  }
  let n = 0;
  for (const { json: f, findings } of byMutant.values()) {
    const seed = f.seed as Seed;
    const seedBytes = fs.readFileSync(path.join(seedDir, `${seed.name}.mig`));
    // Another campaign's seed of the same name is another save: this one is kept beside it, by content.
    let seedName = `qemu${major}-${seed.name}`;
    const committed = path.join(dest, 'seeds', `${seedName}.mig.gz`);
    if (fs.existsSync(committed) && !zlib.gunzipSync(fs.readFileSync(committed)).equals(seedBytes)) seedName += `-${c.sha256(seedBytes).slice(0, 8)}`;
    const seedGz = path.join(dest, 'seeds', `${seedName}.mig.gz`);
    if (!fs.existsSync(seedGz)) fs.writeFileSync(seedGz, zlib.gzipSync(seedBytes, { level: 9 }));
    const outcomes = f.outcomes as Record<string, { code: number | null }>;
    const status = await replayStatus(seed, seedBytes, f.mutations as Mutation[], f.qemu as QemuVerdict);
    const name = `${seedName}-${c.sha256(Buffer.from(JSON.stringify(f.mutations))).slice(0, 10)}`;
    const fixture = { seed: `seeds/${seedName}.mig.gz`, seedInfo: seed, mutations: f.mutations, qemu: f.qemu, findings, status, outcomes, found: f.found };
    fs.writeFileSync(path.join(dest, `${name}.json`), JSON.stringify(fixture, null, 2) + '\n');
    n++;
  }
  log(`exported ${n} mutants to ${path.relative(REPO, dest)}`);
  fs.rmSync(scratch, { recursive: true, force: true });
}

/** The replay's judgement of the current build on one exported mutant (see exportFindings). */
async function replayStatus(seed: Seed, seedBytes: Buffer, mutations: Mutation[], qemu: QemuVerdict): Promise<'fixed' | 'beyond-format' | 'open'> {
  const input = path.join(scratch, 'replay.mig');
  fs.writeFileSync(input, c.applyMutations(seedBytes, mutations));
  const out = fs.mkdtempSync(path.join(scratch, 'replay-'));
  try {
    const { problems, codes } = await c.replayProblems(input, out, qemu, seed.load.snapshot, limits, scratch);
    if (!problems.length) return 'fixed';
    return problems.every((p) => / exits 0 on a file QEMU refuses /.test(p)) && codes.verify !== 2 ? 'beyond-format' : 'open';
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}
