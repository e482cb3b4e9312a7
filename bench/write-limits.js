// Write-side limits of #17, whole-process, on one guest whose every other page is random (each
// present page an isolated run, the worst case for exact holes):
//   convert (stream → mapped-ram)  vs the best C writer of the same page runs into a page area
//   extract (sparse raw image)     vs the best C writer of the same page runs into an image
// The C writers (bench/native/runwriter.c): O_DIRECT per run; buffered with a windowed
// sync_file_range + DONTNEED; buffered with a windowed fdatasync + DONTNEED. Every output is checked
// for exact holes (allocation within 1% of the C writer's) and a clean page cache (fincore).
// Runs alternate mram and the writers; a ratio is the median of per-run ratios (best writer s / mram s).
// The stream input lives on /dev/shm (read from memory); outputs go to MRAM_BENCH_DIR (the disk).
// Writes bench/results/write-limits.json.   MRAM_BENCH_GIB=2  MRAM_BENCH_RUNS=3  MRAM_BENCH_DIR=<dir>
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocated, fincore, run } from './lib/measure.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const GIB = Number(process.env.MRAM_BENCH_GIB ?? 2);
const RUNS = Number(process.env.MRAM_BENCH_RUNS ?? 3);
const PAGE = 4096;
const bytes = Math.round(GIB * 2 ** 30);
const dir = fs.mkdtempSync(path.join(process.env.MRAM_BENCH_DIR ?? os.tmpdir(), 'mram-write-limits-'));
const shm = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'mram-write-limits-'));
const log = (...a) => console.error('[write-limits]', ...a);
process.on('exit', () => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(shm, { recursive: true, force: true });
});
const { MappedRamWriter, MigrationFile } = await import(path.join(root, 'dist/index.js'));

const writer = path.join(shm, 'runwriter');
const cc = spawnSync('cc', ['-O2', '-o', writer, path.join(root, 'bench/native/runwriter.c')], { encoding: 'utf8' });
if (cc.status !== 0) throw new Error(`cc runwriter.c: ${cc.stderr}`);

/** The guest as a mapped-ram file on disk (extract's input) and as a stream on /dev/shm (convert's). */
async function makeGuest() {
  const mig = path.join(dir, 'guest.mig');
  const stream = path.join(shm, 'guest.stream');
  const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: ['mapped-ram'], uuid: null, subsectionOrder: ['configuration/capabilities'] };
  const w = await MappedRamWriter.create(mig, { configuration: config, blocks: [{ id: 'pc.ram', usedLength: bytes }], force: true });
  const chunk = Buffer.alloc(64 << 20);
  for (let off = 0; off < bytes; off += chunk.length) {
    crypto.randomFillSync(chunk);
    for (let p = 1; p < chunk.length / PAGE; p += 2) chunk.fill(0, p * PAGE, (p + 1) * PAGE);
    await w.writePages('pc.ram', off / PAGE, chunk);
  }
  await w.writeVmdesc(JSON.stringify({ page_size: PAGE, devices: [] }));
  await w.finish();
  await run(process.execPath, [path.join(root, 'bin/mram.js'), 'convert', mig, stream, '--to', 'stream', '-q']);
  return { mig, stream };
}

/** Where the page area of the converted file starts (the C writers write their runs there). */
async function pagesOffset(file) {
  const f = await MigrationFile.open(file);
  try {
    return f.blocks[0].entry.mappedRam.pagesOffset;
  } finally {
    await f.close();
  }
}

/** One output: seconds, allocation, bytes cached at the end; removed afterwards. */
async function measure(cmd, args, out) {
  const r = await run(cmd, args);
  const m = { s: cmd === writer ? JSON.parse(r.stdout).seconds : r.secs, rssMiB: r.rssMiB, allocated: allocated(out), cached: fincore(out) };
  fs.rmSync(out, { force: true });
  return m;
}

const MODES = ['direct', 'sfr', 'fdatasync'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

log(`writing a ${GIB} GiB guest (every other page random) in ${dir}, its stream in ${shm}`);
const { mig, stream } = await makeGuest();
const mram = (...args) => [process.execPath, [path.join(root, 'bin/mram.js'), ...args, '-q', '--force']];
const out = path.join(dir, 'out');
const jobs = [
  { command: 'convert (stream → mapped-ram)', ours: mram('convert', stream, out, '--to', 'mapped-ram'), base: null, target: 0.9 },
  { command: 'extract (sparse raw image)', ours: mram('extract', mig, '--block', 'pc.ram', '-o', out), base: 0, target: 0.8 },
];
const rows = [];
for (const job of jobs) {
  const samples = { mram: [], ...Object.fromEntries(MODES.map((m) => [m, []])) };
  let base = job.base;
  for (let i = 0; i < RUNS; i++) {
    // mram first: its output tells where the page area starts.
    const r = await run(...job.ours);
    if (base === null) base = await pagesOffset(out);
    samples.mram.push({ s: r.secs, rssMiB: r.rssMiB, allocated: allocated(out), cached: fincore(out) });
    fs.rmSync(out, { force: true });
    for (const m of MODES) samples[m].push(await measure(writer, [m, out, String(bytes), '2', String(base)], out));
  }
  const best = MODES.reduce((a, b) => (median(samples[b].map((x) => x.s)) < median(samples[a].map((x) => x.s)) ? b : a));
  const ratios = samples.mram.map((x, i) => samples[best][i].s / x.s);
  const ratio = median(ratios);
  const alloc = median(samples.mram.map((x) => x.allocated)) / median(samples[best].map((x) => x.allocated));
  const cached = Math.max(...samples.mram.map((x) => x.cached));
  rows.push({
    command: job.command,
    work: `${GIB} GiB guest, every other page random`,
    work_bytes: bytes / 2,
    mram_s: median(samples.mram.map((x) => x.s)),
    limit: `C ${best} writer of the same runs (bench/native/runwriter.c)`,
    limit_s: median(samples[best].map((x) => x.s)),
    ratio,
    target: `≥ ${job.target}×, allocation ≤ 1.01× the C writer's, cache clean`,
    met: ratio >= job.target && alloc <= 1.01 && cached <= 0.02 * bytes,
    rss_mib: Math.max(...samples.mram.map((x) => x.rssMiB)),
    allocation_vs_c: alloc,
    cached_bytes_at_end: cached,
    writers_s: Object.fromEntries(MODES.map((m) => [m, median(samples[m].map((x) => x.s))])),
    runs: samples,
  });
  log(`${job.command}: ${rows.at(-1).mram_s.toFixed(2)} s; writers ${MODES.map((m) => `${m} ${rows.at(-1).writers_s[m].toFixed(2)} s`).join(', ')}: ${ratio.toFixed(2)}× the ${best} writer; allocation ${alloc.toFixed(4)}×, ${cached} B cached`);
}
const result = { machine: `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}`, loadavg: os.loadavg(), guestGiB: GIB, runs: RUNS, rows };
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, 'bench/results/write-limits.json'), JSON.stringify(result, null, 2) + '\n');
