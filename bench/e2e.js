// End-to-end performance suite: whole `mram` processes against dd (the hardware limit), sha256sum
// and QEMU 10's own mapped-ram save/load, on the same guest, same bytes, same filesystem.
//
//   npm run bench:e2e -- [--runs 3] [--gib 4] [--dir DIR] [--no-profile] [--rerun-scan] [--keep]
//
// Writes bench/results/e2e.json, bench/results/e2e-throughput.svg and the e2e table block of
// bench/README.md (`--report-only` re-renders them from e2e.json); findings: bench/FINDINGS.md.
// Ratios are computed pair by pair inside each run, then summarised
// (median, min–max over runs), so machine-wide noise hits both sides of a ratio alike.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { qemuLoad, qemuSave, qemuVersion } from './lib/qemu.js';
import { allocated, cachedBytes, evict, fincore, machine, plainNodeEnvironment, run, stats, warm } from './lib/measure.js';
import { summariseProfile } from './lib/profile.js';
import { barChart, fmt } from './lib/svg.js';
import { renderTables } from './lib/report.js';
import { writeTable } from './lib/tables.js';
import { buildLayoutWriter, writeRuns } from './lib/layout-writer.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    gib: { type: 'string', default: '4' }, // the guest size (#4: peak RSS converting a 4 GiB guest)
    dir: { type: 'string' },
    'no-profile': { type: 'boolean', default: false },
    'rerun-scan': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'no-readme': { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
  },
});
if (opt['report-only']) {
  // Re-render bench/README.md's e2e table block and the plot from bench/results/e2e.json (no measurements).
  const result = JSON.parse(fs.readFileSync(path.join(root, 'bench/results/e2e.json'), 'utf8'));
  fs.writeFileSync(path.join(root, 'bench/results/e2e-throughput.svg'), plot(result));
  writeReadme(result);
  process.exit(0);
}
const RUNS = Math.max(1, Number(opt.runs));
const GIB = Number(opt.gib);
if (!(GIB > 0 && GIB <= 4)) throw new Error('--gib must be in (0, 4]: the guest RAM lives in /dev/shm');
const MEM_MIB = Math.round(GIB * 1024);
const PAGE = 4096;
const MRAM = path.join(root, 'bin/mram.js');
const log = (...a) => console.error('[e2e]', ...a);
const environment = plainNodeEnvironment();

const workDir = fs.mkdtempSync(opt.dir ? path.join(opt.dir, 'mram-e2e-') : path.join(root, 'bench', '.e2e-work-'));
const shmDir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'mram-e2e-'));
let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (!opt.keep) fs.rmSync(workDir, { recursive: true, force: true });
  fs.rmSync(shmDir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

const qv = qemuVersion();
if (!qv) throw new Error('qemu-system-x86_64 not found (scripts/install-qemu.sh)');
if (!fs.existsSync(path.join(root, 'dist/cli/mram.cjs'))) spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });

// ---------------------------------------------------------------- guest RAM: half the pages random

/**
 * Guest RAM (sparse file on /dev/shm): runs of 1–256 random pages alternate with runs of 1–256
 * zero pages (lengths from a seeded PRNG, data from the CSPRNG, so nothing compresses or is zero).
 * `present` gets exactly the non-zero pages' bytes, back to back: dd's input.
 */
function makeGuest(ramPath, presentPath) {
  const pages = (MEM_MIB * 2 ** 20) / PAGE;
  const fd = fs.openSync(ramPath, 'w');
  const pd = fs.openSync(presentPath, 'w');
  fs.ftruncateSync(fd, MEM_MIB * 2 ** 20);
  const buf = Buffer.alloc(256 * PAGE);
  let seed = 0x6d72616d;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  let p = 0;
  let present = 0;
  let presentPos = 0;
  const runs = [];
  while (p < pages) {
    const n = Math.min(1 + (rnd() % 256), pages - p);
    const chunk = buf.subarray(0, n * PAGE);
    crypto.randomFillSync(chunk);
    fs.writeSync(fd, chunk, 0, chunk.length, p * PAGE);
    fs.writeSync(pd, chunk, 0, chunk.length, presentPos);
    presentPos += chunk.length;
    present += n;
    runs.push([p, n]);
    p += n + Math.min(1 + (rnd() % 256), pages - p - n); // then a zero run
  }
  fs.closeSync(fd);
  fs.closeSync(pd);
  return { pages, presentPages: present, presentBytes: present * PAGE, runs };
}

const mram = (args, okCodes) => run(process.execPath, [MRAM, ...args], { okCodes });
const dd = (args) => run('dd', [...args, 'status=none']);
const rmf = (...fs_) => fs_.forEach((f) => fs.rmSync(f, { force: true }));

/**
 * Runs `fn` (a write) and records Cached growth and the output's resident bytes. The filesystem
 * is synced first (syncfs): the block frees of files deleted just before (earlier outputs) would
 * otherwise land in the journal commit of whichever writer calls fdatasync next.
 */
async function measureWrite(out, fn) {
  rmf(out);
  spawnSync('sync', ['-f', workDir]);
  const c0 = cachedBytes();
  const r = await fn();
  const c1 = cachedBytes();
  return { ...r, written: allocated(out), resident: fincore(out), cachedDelta: c1 - c0 };
}

// ---------------------------------------------------------------- set-up

const ram = path.join(shmDir, 'ram');
const presentBin = path.join(shmDir, 'present.bin');
const stream = path.join(workDir, 'guest.stream');
const ours = path.join(workDir, 'mram.mapped-ram');
const ddOut = path.join(workDir, 'dd.out');
const qemuMr = path.join(workDir, 'qemu.mapped-ram');
const qemuTmp = path.join(workDir, 'qemu-multifd.mapped-ram');
const rawImg = path.join(workDir, 'mem.raw');
const destRam = path.join(shmDir, 'dest-ram');

const startedAt = new Date();
const git = (args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
// dist/ is what runs: note the commit and whether src/ had uncommitted changes (built or not).
const build = { commit: git(['rev-parse', '--short', 'HEAD']), srcDirty: git(['status', '--porcelain', '--', 'src', 'assembly']) !== '', distBuilt: fs.statSync(path.join(root, 'dist/cli/mram.cjs')).mtime.toISOString() };
log(`guest ${MEM_MIB} MiB, ${RUNS} runs, work dir ${workDir}`);
let t = performance.now();
const guest = makeGuest(ram, presentBin);
const N = guest.presentBytes;
const guestRuns = guest.runs;
delete guest.runs;
const runsFile = path.join(shmDir, 'runs.bin');
writeRuns(runsFile, guestRuns);
const layoutdd = buildLayoutWriter(workDir);
const layoutOut = path.join(workDir, 'layoutdd.out');
if (!layoutdd) log('no C compiler: the "dd, mapped-ram layout" row is skipped');
log(`guest RAM: ${guest.presentPages}/${guest.pages} pages non-zero (${(N / 2 ** 30).toFixed(2)} GiB) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
const ramDigest = (await run('sha256sum', [ram])).stdout.split(' ')[0];
const streamSave = await qemuSave({ ramPath: ram, memMiB: MEM_MIB, out: stream, mappedRam: false });
log(`input: QEMU plain-stream save ${streamSave.secs.toFixed(2)} s, ${(fs.statSync(stream).size / 2 ** 20).toFixed(0)} MiB`);

const QEMU_CFGS = [
  { key: 'qemuSave1', label: 'QEMU save, mapped-ram, 1 channel', cfg: { mappedRam: true } },
  { key: 'qemuSaveMfd2', label: 'QEMU save, mapped-ram, multifd 2', cfg: { mappedRam: true, multifd: 2 } },
  { key: 'qemuSaveMfd2Dio', label: 'QEMU save, mapped-ram, multifd 2, direct-io', cfg: { mappedRam: true, multifd: 2, directIo: true } },
];

const runs = [];
const checks = {};
for (let i = 0; i < RUNS; i++) {
  const w = {};
  // Node's own start-up (no mram code): the fixed cost inside every mram time, shown beside the ratios.
  w.nodeStart = await run(process.execPath, ['-e', '0']);
  // ---- write
  rmf(ours, ddOut);
  const writes = [
    async () => {
      warm(stream);
      const streamResident = fincore(stream);
      w.convert = await measureWrite(ours, () => mram(['convert', stream, ours, '--to', 'mapped-ram', '--force']));
      w.convert.inputResident = streamResident;
    },
    async () => {
      warm(presentBin);
      w.ddWrite = await measureWrite(ddOut, () => dd([`if=${presentBin}`, `of=${ddOut}`, 'bs=1M', 'oflag=direct', 'conv=fdatasync']));
    },
    async () => {
      if (!layoutdd) return;
      // Same bytes at the slots of the mapped-ram page area (1 MiB-aligned, as in the files), holes between runs.
      rmf(layoutOut);
      warm(presentBin);
      w.ddLayout = await measureWrite(layoutOut, () => run(layoutdd, [presentBin, layoutOut, runsFile, String(1 << 20), String((1 << 20) + MEM_MIB * 2 ** 20)]));
      rmf(layoutOut);
    },
  ];
  // The order of mram and its peers alternates from run to run (disk speed drifts on a shared VM).
  for (const write of i % 2 ? writes.reverse() : writes) await write();
  for (const q of QEMU_CFGS) {
    const out = q.key === 'qemuSave1' ? qemuMr : qemuTmp;
    rmf(out);
    w[q.key] = await measureWrite(out, () => qemuSave({ ramPath: ram, memMiB: MEM_MIB, out, ...q.cfg }));
    delete w[q.key].info;
    if (out === qemuTmp) rmf(qemuTmp);
  }
  // ---- read (every input evicted from the page cache first)
  evict(ddOut);
  w.ddRead = await dd([`if=${ddOut}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']);
  evict(ours);
  w.verifyDigest = await mram(['verify', ours, '--digest', '--json'], [0, 3]);
  w.verifyDigest.digest = JSON.parse(w.verifyDigest.stdout).digests?.mem;
  evict(qemuMr);
  w.verifyDigestQemu = await mram(['verify', qemuMr, '--digest', '--json'], [0, 3]);
  w.verifyDigestQemu.digest = JSON.parse(w.verifyDigestQemu.stdout).digests?.mem;
  rmf(rawImg);
  evict(ours);
  w.extract = await measureWrite(rawImg, () => mram(['extract', ours, '--block', 'mem', '-o', rawImg, '--force']));
  evict(rawImg);
  w.sha256sum = await run('sha256sum', [rawImg]);
  w.sha256sum.digest = w.sha256sum.stdout.split(' ')[0];
  // Loads alternate their order from run to run, so neither side always goes first.
  const loads = [
    async () => {
      evict(ours);
      rmf(destRam);
      w.qemuLoadOurs = await qemuLoad({ ramPath: destRam, memMiB: MEM_MIB, file: ours, mappedRam: true });
      if (i === 0) checks.loadOursMatchesGuest = (await run('sha256sum', [destRam])).stdout.split(' ')[0] === ramDigest;
      rmf(destRam);
    },
    async () => {
      evict(qemuMr);
      rmf(destRam);
      w.qemuLoadQemu = await qemuLoad({ ramPath: destRam, memMiB: MEM_MIB, file: qemuMr, mappedRam: true });
      rmf(destRam);
    },
  ];
  for (const load of i % 2 ? loads.reverse() : loads) await load();
  if (i === 0) {
    checks.verifyDigestMatchesGuest = w.verifyDigest.digest === ramDigest;
    checks.verifyDigestQemuFileMatchesGuest = w.verifyDigestQemu.digest === ramDigest;
    checks.sha256sumOfExtractMatchesGuest = w.sha256sum.digest === ramDigest;
  }
  for (const k of Object.keys(w)) {
    delete w[k].stdout;
    delete w[k].stderr;
    delete w[k].code;
  }
  runs.push(w);
  log(`run ${i + 1}/${RUNS}: ` + Object.entries(w).map(([k, v]) => `${k} ${v.secs.toFixed(2)}s`).join(', '));
}

// ---------------------------------------------------------------- profiles (one extra run each)

let profiles = null;
if (!opt['no-profile']) {
  const profDir = path.join(workDir, 'profiles');
  fs.mkdirSync(profDir, { recursive: true });
  const prof = async (name, args, okCodes = [0]) => {
    const d = path.join(profDir, name);
    fs.mkdirSync(d);
    const r = await run(process.execPath, ['--cpu-prof', '--cpu-prof-dir', d, MRAM, ...args], { okCodes });
    const f = fs.readdirSync(d).find((x) => x.endsWith('.cpuprofile'));
    return { wallSecs: r.secs, ...summariseProfile(path.join(d, f), root) };
  };
  profiles = {};
  warm(stream);
  rmf(ours);
  profiles.convert = await prof('convert', ['convert', stream, ours, '--to', 'mapped-ram', '--force']);
  evict(ours);
  profiles.verifyDigest = await prof('verify', ['verify', ours, '--digest'], [0, 3]);
  evict(ours);
  profiles.extract = await prof('extract', ['extract', ours, '--block', 'mem', '-o', rawImg, '--force']);
  if (opt.keep) log(`profiles in ${profDir}`);
}

// ---------------------------------------------------------------- scan (kernel benchmark) headline

if (opt['rerun-scan']) spawnSync('npm', ['run', '--silent', 'bench'], { cwd: root, stdio: 'inherit' });
let scan = null;
try {
  const s = JSON.parse(fs.readFileSync(path.join(root, 'bench/results/scan.json'), 'utf8'));
  const avg = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  scan = { date: s.date, sizes: {} };
  for (const size of [...new Set(s.rows.map((r) => r.size))]) {
    const rows = s.rows.filter((r) => r.size === size);
    scan.sizes[size] = {
      simdVsBufferEquals: avg(rows.map((r) => r.simdVsBufferEquals)),
      simdVsBufferEqualsWorst: Math.min(...rows.map((r) => r.simdVsBufferEquals)),
      simdVsNative: avg(rows.map((r) => r.simdVsNative)),
      simdVsNativeWorst: Math.min(...rows.map((r) => r.simdVsNative)),
      simdGbps: Object.fromEntries(rows.map((r) => [r.density, r.gbps['wasm SIMD']])),
    };
  }
} catch (e) {
  log(`no scan results (${e.message}); run npm run bench`);
}

// ---------------------------------------------------------------- summary

const TOOLS = {
  convert: { phase: 'write', label: 'mram convert (stream → mapped-ram)', mram: true },
  ddWrite: { phase: 'write', label: 'dd oflag=direct bs=1M (same bytes)' },
  ddLayout: { phase: 'write', label: 'same, at the mapped-ram slots (holes between runs)' },
  qemuSave1: { phase: 'write', label: QEMU_CFGS[0].label },
  qemuSaveMfd2: { phase: 'write', label: QEMU_CFGS[1].label },
  qemuSaveMfd2Dio: { phase: 'write', label: QEMU_CFGS[2].label },
  verifyDigest: { phase: 'read', label: 'mram verify --digest (our file)', mram: true },
  verifyDigestQemu: { phase: 'read', label: "mram verify --digest (QEMU's file)", mram: true },
  extract: { phase: 'read', label: 'mram extract --block mem', mram: true },
  ddRead: { phase: 'read', label: 'dd iflag=direct bs=1M (same bytes)' },
  sha256sum: { phase: 'read', label: 'sha256sum of the raw image' },
  qemuLoadOurs: { phase: 'load', label: 'QEMU load of the mram file' },
  qemuLoadQemu: { phase: 'load', label: "QEMU load of QEMU's own file" },
  nodeStart: { phase: 'fixed', label: '`node -e 0` (Node start-up, inside every mram time)' },
};
const summary = {};
for (const [k, tool] of Object.entries(TOOLS)) {
  if (!runs[0][k]) continue;
  const col = (f) => stats(runs.map((r) => f(r[k])));
  summary[k] = {
    ...tool,
    secs: col((x) => x.secs),
    gbps: col((x) => N / x.secs / 1e9),
    rssMiB: tool.mram || k === 'ddWrite' || k === 'ddLayout' || k === 'ddRead' || k === 'sha256sum' ? col((x) => x.rssMiB) : undefined,
    residentPct: runs[0][k].resident !== undefined ? col((x) => (100 * x.resident) / x.written) : undefined,
    residentMiB: runs[0][k].resident !== undefined ? col((x) => x.resident / 2 ** 20) : undefined,
    cachedDeltaMiB: runs[0][k].cachedDelta !== undefined ? col((x) => x.cachedDelta / 2 ** 20) : undefined,
    writtenMiB: runs[0][k].written !== undefined ? col((x) => x.written / 2 ** 20) : undefined,
  };
}
/** Pairwise ratio per run: time(b) / time(a) (> 1: a is faster). */
const ratio = (a, b) => stats(runs.map((r) => r[b].secs / r[a].secs));
const ratios = {
  convertVsDdWrite: ratio('convert', 'ddWrite'),
  ...(layoutdd ? { convertVsDdLayout: ratio('convert', 'ddLayout'), ddLayoutVsDdWrite: ratio('ddLayout', 'ddWrite') } : {}),
  convertVsQemuSave1: ratio('convert', 'qemuSave1'),
  convertVsQemuSaveMfd2: ratio('convert', 'qemuSaveMfd2'),
  convertVsQemuSaveMfd2Dio: ratio('convert', 'qemuSaveMfd2Dio'),
  verifyDigestVsDdRead: ratio('verifyDigest', 'ddRead'),
  verifyDigestVsSha256sum: ratio('verifyDigest', 'sha256sum'),
  extractVsDdRead: ratio('extract', 'ddRead'),
  qemuLoadOursVsQemuLoadQemu: ratio('qemuLoadOurs', 'qemuLoadQemu'),
};
const maxRss = Math.max(...['convert', 'verifyDigest', 'verifyDigestQemu', 'extract'].map((k) => summary[k].rssMiB.max));
const targets = [
  { name: 'convert ≥ 0.9× dd oflag=direct', value: ratios.convertVsDdWrite.median, figure: `${fmt(ratios.convertVsDdWrite.median)}× (${fmt(ratios.convertVsDdWrite.min)}–${fmt(ratios.convertVsDdWrite.max)})`, met: ratios.convertVsDdWrite.median >= 0.9 },
  ...['qemuSave1', 'qemuSaveMfd2', 'qemuSaveMfd2Dio'].map((q) => {
    const r = ratios[`convertVsQemu${q.slice(4)}`];
    return { name: `convert faster than ${TOOLS[q].label}`, value: r.median, figure: `${fmt(r.median)}× as fast (${fmt(r.min)}–${fmt(r.max)})${r.min <= 1 ? '; slower in at least one run' : ''}`, met: r.median > 1 };
  }),
  { name: 'page-cache residency of the convert output < 2% of bytes written', value: summary.convert.residentPct.max, figure: `${fmt(summary.convert.residentPct.max)}% (worst run)`, met: summary.convert.residentPct.max < 2 },
  { name: 'verify --digest ≥ 0.9× dd iflag=direct', value: ratios.verifyDigestVsDdRead.median, figure: `${fmt(ratios.verifyDigestVsDdRead.median)}× (${fmt(ratios.verifyDigestVsDdRead.min)}–${fmt(ratios.verifyDigestVsDdRead.max)})`, met: ratios.verifyDigestVsDdRead.median >= 0.9 },
  { name: 'peak RSS of every mram command < 200 MiB', value: maxRss, figure: `${fmt(maxRss)} MiB (worst command, worst run)`, met: maxRss < 200 },
];

const result = {
  date: startedAt.toISOString(),
  durationSecs: +((Date.now() - startedAt.getTime()) / 1000).toFixed(1),
  machine: machine(qv, workDir),
  environment,
  build,
  config: { runs: RUNS, guestMiB: MEM_MIB, pageSize: PAGE, ...guest, inputStreamBytes: fs.statSync(stream).size, inputStreamSaveSecs: streamSave.secs, workDir: path.dirname(workDir) },
  units: { gbps: 'present-page bytes (the same N for every tool) / whole-process wall seconds / 1e9', secs: 'wall seconds; mram/dd/sha256sum: process spawn → exit; QEMU: migrate → completed over QMP (guest already started)' },
  checks,
  summary,
  ratios,
  targets,
  scan,
  profiles,
  runs,
};
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, 'bench/results/e2e.json'), JSON.stringify(result, null, 2) + '\n');

fs.writeFileSync(path.join(root, 'bench/results/e2e-throughput.svg'), plot(result));
if (!opt['no-readme']) writeReadme(result);
console.log(JSON.stringify({ summary: Object.fromEntries(Object.entries(summary).map(([k, s]) => [k, { secs: s.secs.median, gbps: s.gbps.median, rssMiB: s.rssMiB?.max, residentPct: s.residentPct?.max }])), ratios, targets, checks }, null, 2));
for (const tg of targets) log(`${tg.met ? 'MET    ' : 'NOT MET'} ${tg.name}: ${tg.figure}`);

function plot(result) {
  const phases = [['write', 'Write (GB/s of page data written)'], ['read', 'Read (GB/s of page data read, cold cache)'], ['load', 'QEMU load (GB/s of page data)']];
  const m = result.machine;
  return barChart({
    title: `mram end to end — ${result.config.guestMiB / 1024} GiB guest, ${(result.config.presentBytes / 2 ** 30).toFixed(2)} GiB of non-zero pages`,
    subtitle: `${m.cpu}, ${m.cores} cores, ${m.filesystem}, QEMU ${m.qemu}, node ${m.node}, ${result.config.runs} runs, ${result.date.slice(0, 10)}`,
    groups: phases.map(([ph, title]) => ({
      title,
      bars: Object.values(result.summary)
        .filter((s) => s.phase === ph)
        .map((s) => ({ label: s.label, median: s.gbps.median, min: s.gbps.min, max: s.gbps.max, highlight: !!s.mram })),
    })),
  });
}

function writeReadme(result) {
  writeTable(path.join(root, 'bench/README.md'), 'e2e', renderTables(result));
}
