// Write-side limits of #17, whole-process, on a QEMU guest whose every other page is random (each
// present page an isolated run, the worst case for exact holes), RAM a memory-backend-file on /dev/shm:
//   convert (QEMU's stream save → mapped-ram)  vs the best C writer of the same page runs into the page area,
//                                              vs QEMU's own mapped-ram save (1 channel; multifd 2 + direct-io)
//   extract (sparse raw image of the RAM)       vs the best C writer of the same runs into an image, and vs the
//                                              floor of its disk work: that writer with a concurrent
//                                              `dd iflag=direct` of extract's input (extract must read it)
//   convert of a dense guest (every page random) vs the C O_DIRECT writer of 1 MiB runs (the path dense
//                                              guests keep: O_DIRECT from the arena; for the record, no target)
// The C writers (bench/native/runwriter.c): O_DIRECT per run; buffered with a windowed sync_file_range +
// DONTNEED; buffered with a windowed fdatasync + DONTNEED. Every output's allocation is checked against
// QEMU's mapped-ram file of the same guest (convert) or the C writer's (extract), and the output's
// page-cache residency (fincore) is polled through the command (peak) and read at the end.
// Runs alternate mram, the writers and QEMU; a ratio is the median of per-run ratios (reference s / mram s).
// Inputs live on /dev/shm (read from memory) except extract's, QEMU's mapped-ram file on the disk.
// Writes bench/results/write-limits.json.
//   MRAM_BENCH_GIB=2  MRAM_BENCH_RUNS=3  MRAM_BENCH_DENSE_GIB=2 (0: no dense row)  MRAM_BENCH_DIR=<dir on the disk>
import { execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocated, evict, fincore, plainNodeEnvironment, run } from './lib/measure.js';
import { qemuSave, qemuVersion } from './lib/qemu.js';
import { blockedByDisk } from './lib/verdict.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const GIB = Number(process.env.MRAM_BENCH_GIB ?? 2);
const DENSE_GIB = Number(process.env.MRAM_BENCH_DENSE_GIB ?? 2);
const RUNS = Number(process.env.MRAM_BENCH_RUNS ?? 3);
const PAGE = 4096;
const MIB = 2 ** 20;
const dir = fs.mkdtempSync(path.join(process.env.MRAM_BENCH_DIR ?? os.tmpdir(), 'mram-write-limits-'));
const shm = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'mram-write-limits-'));
const log = (...a) => console.error('[write-limits]', ...a);
const environment = plainNodeEnvironment();
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;

// A file system mounted with `discard` trims every freed extent synchronously: deleting one output
// of isolated pages (262k extents for 2 GiB) took ~90 s here. The outputs are deleted between runs,
// so the bench lifts the option for its own duration (root only) and puts it back.
const mountOpts = spawnSync('findmnt', ['-n', '-o', 'OPTIONS,TARGET', '-T', dir], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
const remount = mountOpts[0]?.split(',').includes('discard') && process.getuid?.() === 0 ? mountOpts[1] : null;
if (remount && spawnSync('mount', ['-o', 'remount,nodiscard', remount]).status === 0) log(`${remount} remounted nodiscard for the run (put back at exit)`);
process.on('exit', () => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(shm, { recursive: true, force: true });
  if (remount) spawnSync('mount', ['-o', 'remount,discard', remount]);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const { MigrationFile } = await import(path.join(root, 'dist/index.js'));
// Whether mram's commands run with the native helper (MRAM_NATIVE=0 measures them without it).
const { nativeIo } = await import(path.join(root, 'dist/io/native.js'));
const writer = path.join(shm, 'runwriter');
const cc = spawnSync('cc', ['-O2', '-o', writer, path.join(root, 'bench/native/runwriter.c')], { encoding: 'utf8' });
if (cc.status !== 0) throw new Error(`cc runwriter.c: ${cc.stderr}`);

/** Guest RAM on /dev/shm: `gib` GiB, present pages random (every `every`-th page; 1 = all). */
function guestRam(name, gib, every) {
  const file = path.join(shm, name);
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * MIB);
  for (let off = 0; off < gib * 2 ** 30; off += chunk.length) {
    crypto.randomFillSync(chunk);
    if (every > 1) for (let p = 0; p < chunk.length / PAGE; p++) if (p % every !== 0) chunk.fill(0, p * PAGE, (p + 1) * PAGE);
    fs.writeSync(fd, chunk, 0, chunk.length, off);
  }
  fs.closeSync(fd);
  return file;
}

// The guest's RAM block: the memory backend's id (bench/lib/qemu.js names it `mem`).
const RAM_BLOCK = 'mem';

/** Where the RAM block's page area starts in a mapped-ram file (the C writers write their runs there). */
async function pagesOffset(file) {
  const f = await MigrationFile.open(file);
  try {
    return f.blocks.find((b) => b.id === RAM_BLOCK).entry.mappedRam.pagesOffset;
  } finally {
    await f.close();
  }
}

/** Peak page-cache residency of the files in `dir` named like `out`, polled every 100 ms while `work` runs. */
async function peakCached(work) {
  let peak = 0;
  let busy = false;
  const poll = setInterval(() => {
    if (busy) return;
    const files = fs.readdirSync(dir).filter((n) => n.includes('out')).map((n) => path.join(dir, n));
    if (!files.length) return;
    busy = true;
    execFile('fincore', ['--bytes', '--noheadings', '--raw', '-o', 'RES', ...files], (err, stdout) => {
      busy = false;
      if (!err) peak = Math.max(peak, stdout.trim().split('\n').reduce((n, l) => n + (Number(l) || 0), 0));
    });
  }, 100);
  try {
    return { ...(await work()), peakCached: peak };
  } finally {
    clearInterval(poll);
  }
}

const out = path.join(dir, 'out');
/** Measures one output: seconds, allocation, cached bytes at the end; the output is removed afterwards. */
async function measured(secs, extra = {}) {
  const m = { s: secs, allocated: allocated(out), cached: fincore(out), ...extra };
  fs.rmSync(out, { force: true });
  return m;
}
const mram = async (args) => {
  const r = await peakCached(() => run(process.execPath, [path.join(root, 'bin/mram.js'), ...args, '-q', '--force']));
  return measured(r.secs, { rssMiB: r.rssMiB, peakCached: r.peakCached });
};
const cWriter = async (mode, bytes, every, base) => measured(JSON.parse((await run(writer, [mode, out, String(bytes), String(every), String(base)])).stdout).seconds);
/** The C writer with `dd iflag=direct` reading `input` at the same time: the disk work extract cannot avoid. */
async function cWriterWithRead(mode, bytes, base, input) {
  const started = performance.now();
  const read = run('dd', [`if=${input}`, 'of=/dev/null', 'bs=4M', 'iflag=direct', 'status=none']);
  await cWriter(mode, bytes, 2, base);
  await read;
  return { s: (performance.now() - started) / 1000 };
}
const qemu = async (ramPath, memMiB, cfg) => {
  const r = await qemuSave({ ramPath, memMiB, out, ...cfg });
  return measured(r.secs);
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mid = (samples, key = 's') => median(samples.map((x) => x[key]));
// The O_DIRECT writer takes 5–10× the others on isolated pages: one run of it says so.
const modesFor = (i) => (i === 0 ? ['direct', 'sfr', 'fdatasync'] : ['sfr', 'fdatasync']);
const bestOf = (samples, modes) => modes.reduce((a, b) => (mid(samples[b]) < mid(samples[a]) ? b : a));
/** Median of per-run ratios reference / mram, over the runs both have. */
const ratioOf = (ref, ours) => median(ours.map((x, i) => (ref[i] ?? ref[0]).s / x.s));

const qemuV = qemuVersion();
const bytes = GIB * 2 ** 30;
const memMiB = GIB * 1024;
log(`${elapsed()}: ${GIB} GiB guest (every other page random) on ${shm}, outputs in ${dir}; QEMU ${qemuV}; native helper ${nativeIo ? 'loaded' : 'off'}`);
const ram = guestRam('ram', GIB, 2);
const stream = path.join(shm, 'guest.stream');
await qemuSave({ ramPath: ram, memMiB, out: stream, mappedRam: false });
const qemuFile = path.join(dir, 'qemu.mig');
await qemuSave({ ramPath: ram, memMiB, out: qemuFile });
evict(qemuFile);
const qemuAllocated = allocated(qemuFile);
log(`${elapsed()}: QEMU's stream save ${(fs.statSync(stream).size / MIB).toFixed(0)} MiB, mapped-ram save allocates ${(qemuAllocated / MIB).toFixed(1)} MiB`);

const rows = [];
const target = (t) => `≥ ${t}×`;
{
  // convert: mram first in each run (its output tells where the page area starts).
  const s = { mram: [], direct: [], sfr: [], fdatasync: [], qemu1: [], qemuDirect: [] };
  let base = null;
  for (let i = 0; i < RUNS; i++) {
    const convert = ['convert', stream, out, '--to', 'mapped-ram'];
    if (base === null) {
      await run(process.execPath, [path.join(root, 'bin/mram.js'), ...convert, '-q', '--force']);
      base = await pagesOffset(out);
      fs.rmSync(out);
    }
    s.mram.push(await mram(convert));
    for (const m of modesFor(i)) s[m].push(await cWriter(m, bytes, 2, base));
    s.qemu1.push(await qemu(ram, memMiB, {}));
    s.qemuDirect.push(await qemu(ram, memMiB, { multifd: 2, directIo: true }));
    log(`${elapsed()}: convert run ${i + 1}: mram ${s.mram[i].s.toFixed(2)} s, C ${modesFor(i).map((m) => `${m} ${s[m][s[m].length - 1].s.toFixed(2)} s`).join(', ')}, QEMU ${s.qemu1[i].s.toFixed(2)} s / multifd+direct-io ${s.qemuDirect[i].s.toFixed(2)} s`);
  }
  const best = bestOf(s, ['sfr', 'fdatasync', 'direct']);
  const alloc = mid(s.mram, 'allocated') / qemuAllocated;
  const cachedEnd = Math.max(...s.mram.map((x) => x.cached));
  const cachedPeak = Math.max(...s.mram.map((x) => x.peakCached));
  const promises = alloc <= 1.01 && cachedEnd < 0.02 * (bytes / 2) && cachedPeak < 256 * MIB;
  const common = {
    work: `${GIB} GiB guest, every other page random`,
    work_bytes: bytes / 2,
    mram_s: mid(s.mram),
    rss_mib: Math.max(...s.mram.map((x) => x.rssMiB)),
    allocation_vs_qemu: alloc,
    cached_bytes_at_end: cachedEnd,
    cached_bytes_peak: cachedPeak,
  };
  const ratio = ratioOf(s[best], s.mram);
  rows.push({
    command: 'convert (stream → mapped-ram)',
    ...common,
    limit: `C ${best} writer of the same runs (bench/native/runwriter.c)`,
    limit_s: mid(s[best]),
    ratio,
    target: `${target(0.9)}; allocation ≤ 1.01× QEMU's file; cached < 2% at the end, < 256 MiB throughout`,
    met: ratio >= 0.9 && promises,
    writers_s: Object.fromEntries(['direct', 'sfr', 'fdatasync'].map((m) => [m, mid(s[m])])),
    runs: s,
  });
  for (const [key, label, t] of [
    ['qemu1', `QEMU ${qemuV} save, mapped-ram, 1 channel`, 1.5],
    ['qemuDirect', `QEMU ${qemuV} save, mapped-ram, multifd 2 + direct-io`, 2],
  ]) {
    const r = ratioOf(s[key], s.mram);
    rows.push({ command: 'convert (stream → mapped-ram)', ...common, limit: label, limit_s: mid(s[key]), ratio: r, target: `${target(t)} (faster than QEMU)`, met: r >= t && promises, qemu_cached_bytes_at_end: Math.max(...s[key].map((x) => x.cached)) });
  }
}
{
  const s = { mram: [], direct: [], sfr: [], fdatasync: [], floor: [], node: [] };
  for (let i = 0; i < RUNS; i++) {
    s.mram.push(await mram(['extract', qemuFile, '--block', RAM_BLOCK, '-o', out]));
    for (const m of modesFor(i)) s[m].push(await cWriter(m, bytes, 2, 0));
    s.floor.push(await cWriterWithRead(bestOf(s, modesFor(i).filter((m) => m !== 'direct')), bytes, 0, qemuFile));
    // Node's own start-up, inside every mram time and in no C writer's.
    s.node.push({ s: (await run(process.execPath, ['-e', '0'])).secs });
    log(`${elapsed()}: extract run ${i + 1}: mram ${s.mram[i].s.toFixed(2)} s, C ${modesFor(i).map((m) => `${m} ${s[m][s[m].length - 1].s.toFixed(2)} s`).join(', ')}, C + dd read of the input ${s.floor[i].s.toFixed(2)} s`);
  }
  const best = bestOf(s, ['sfr', 'fdatasync', 'direct']);
  const alloc = mid(s.mram, 'allocated') / mid(s[best], 'allocated');
  const cachedEnd = Math.max(...s.mram.map((x) => x.cached));
  const cachedPeak = Math.max(...s.mram.map((x) => x.peakCached));
  const promises = alloc <= 1.01 && cachedEnd < 0.02 * (bytes / 2) && cachedPeak < 256 * MIB;
  const common = { command: 'extract (sparse raw image)', work: `${GIB} GiB guest, every other page random`, work_bytes: bytes / 2, mram_s: mid(s.mram), rss_mib: Math.max(...s.mram.map((x) => x.rssMiB)), allocation_vs_c: alloc, cached_bytes_at_end: cachedEnd, cached_bytes_peak: cachedPeak };
  const ratio = ratioOf(s[best], s.mram);
  const floor = ratioOf(s.floor, s.mram);
  // Where the disk does not overlap reading the input with writing the image, that floor alone can exceed the target's time.
  const blocked = promises ? blockedByDisk({ ratio, target: 0.8, limit_s: mid(s[best]), floor_s: mid(s.floor), floor: 'the C writer with dd iflag=direct reading the input alongside', mramOverFloor: floor }) : {};
  rows.push({ ...common, limit: `C ${best} writer of the same runs (bench/native/runwriter.c)`, limit_s: mid(s[best]), ratio, target: `${target(0.8)}; allocation ≤ 1.01× the C writer's; cache clean`, met: ratio >= 0.8 && promises, ...blocked, writers_s: Object.fromEntries(['direct', 'sfr', 'fdatasync'].map((m) => [m, mid(s[m])])), runs: s });
  rows.push({
    ...common,
    limit: 'the same C writer with dd iflag=direct reading the input alongside (the disk work extract cannot avoid)',
    limit_s: mid(s.floor),
    ratio: floor,
    target: 'none (what the disk allows)',
    met: null,
    // The best ratio to the C writer a Node program could reach: the floor plus Node's start-up.
    best_writer_over_floor_and_node: median(s.floor.map((x, i) => (s[best][i] ?? s[best][0]).s / (x.s + s.node[i].s))),
    node_startup_s: mid(s.node),
  });
}
if (DENSE_GIB > 0) {
  const denseBytes = DENSE_GIB * 2 ** 30;
  log(`${elapsed()}: dense ${DENSE_GIB} GiB guest (every page random)`);
  const denseRam = guestRam('dense-ram', DENSE_GIB, 1);
  const denseStream = path.join(shm, 'dense.stream');
  await qemuSave({ ramPath: denseRam, memMiB: DENSE_GIB * 1024, out: denseStream, mappedRam: false });
  fs.rmSync(denseRam);
  const convert = ['convert', denseStream, out, '--to', 'mapped-ram'];
  await run(process.execPath, [path.join(root, 'bin/mram.js'), ...convert, '-q', '--force']);
  const base = await pagesOffset(out);
  fs.rmSync(out);
  const s = { mram: [], direct: [] };
  for (let i = 0; i < RUNS; i++) {
    s.mram.push(await mram(convert));
    s.direct.push(await cWriter('direct', denseBytes, 1, base));
  }
  const ratio = ratioOf(s.direct, s.mram);
  const cachedEnd = Math.max(...s.mram.map((x) => x.cached));
  rows.push({ command: 'convert, dense guest', work: `${DENSE_GIB} GiB guest, every page random`, work_bytes: denseBytes, mram_s: mid(s.mram), limit: 'C O_DIRECT writer of 1 MiB runs (bench/native/runwriter.c)', limit_s: mid(s.direct), ratio, target: 'none (O_DIRECT kept: cached < 2%)', met: null, cache_clean: cachedEnd < 0.02 * denseBytes, rss_mib: Math.max(...s.mram.map((x) => x.rssMiB)), cached_bytes_at_end: cachedEnd, cached_bytes_peak: Math.max(...s.mram.map((x) => x.peakCached)), runs: s });
}
for (const r of rows) log(`${r.command} vs ${r.limit}: ${r.mram_s.toFixed(2)} s against ${r.limit_s.toFixed(2)} s = ${r.ratio.toFixed(2)}× (${r.target}) ${r.met === null ? '' : r.met ? 'met' : 'NOT met'}`);
const result = { date: new Date().toISOString(), machine: `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}`, qemu: qemuV, nativeHelper: nativeIo !== null, loadavg: os.loadavg(), environment, guestGiB: GIB, denseGiB: DENSE_GIB, runs: RUNS, qemuAllocated, seconds: (performance.now() - t0) / 1000, rows };
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, 'bench/results/write-limits.json'), JSON.stringify(result, null, 2) + '\n');
log(`${elapsed()}: wrote bench/results/write-limits.json`);
