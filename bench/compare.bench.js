// Whole-process benchmark of `mram compare FILE FILE` (a file against itself: every present page is
// read from both "files" and compared) against `dd iflag=direct` reading the file's present pages.
// Both bypass the page cache (O_DIRECT). Writes bench/results/compare-<GiB>g.json.
//   MRAM_BENCH_GIB=1 (guest size)   MRAM_BENCH_DIR=<dir on the target filesystem>   MRAM_BENCH_RUNS=5
// The guest's pages are all present (random data), so its present pages are one contiguous page area
// that a single dd reads. Runs alternate dd and compare; ratios are medians of per-run ratios.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const GIB = Number(process.env.MRAM_BENCH_GIB ?? 1);
const RUNS = Number(process.env.MRAM_BENCH_RUNS ?? 5);
const PAGE = 4096;
const bytes = Math.round(GIB * 2 ** 30);
const workDir = fs.mkdtempSync(path.join(process.env.MRAM_BENCH_DIR ?? os.tmpdir(), 'mram-compare-bench-'));
const file = path.join(workDir, 'guest.mig');
const log = (...a) => console.error('[compare.bench]', ...a);
process.on('exit', () => fs.rmSync(workDir, { recursive: true, force: true }));

if (!fs.existsSync(path.join(root, 'dist/cli/mram.cjs'))) spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
const { MappedRamWriter, MigrationFile } = await import(path.join(root, 'dist/index.js'));

async function makeFile() {
  const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: ['mapped-ram'], uuid: null, subsectionOrder: ['configuration/capabilities'] };
  const w = await MappedRamWriter.create(file, { configuration: config, blocks: [{ id: 'pc.ram', usedLength: bytes }], force: true });
  const chunk = Buffer.alloc(16 << 20);
  for (let off = 0; off < bytes; off += chunk.length) {
    crypto.randomFillSync(chunk);
    await w.writePages('pc.ram', off / PAGE, chunk.subarray(0, Math.min(chunk.length, bytes - off)));
  }
  await w.writeVmdesc(JSON.stringify({ page_size: PAGE, devices: [] }));
  await w.finish();
  const f = await MigrationFile.open(file);
  const b = f.block('pc.ram');
  const layout = { pagesOffset: b.pagesOffset, presentBytes: b.presentPages * PAGE };
  await f.close();
  return layout;
}

function timed(cmd, args, okCodes = [0]) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (!okCodes.includes(r.status)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { s, stdout: r.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

log(`writing a ${GIB} GiB mapped-ram file (every page present) in ${workDir}`);
const { pagesOffset, presentBytes } = await makeFile();
const ddArgs = [`if=${file}`, 'iflag=direct,skip_bytes,count_bytes', `skip=${pagesOffset}`, `count=${presentBytes}`, 'bs=4M', 'of=/dev/null', 'status=none'];

const rows = { dd: [], compare: [] };
for (let i = 0; i < RUNS; i++) {
  rows.dd.push(timed('dd', ddArgs).s);
  const c = timed(process.execPath, [path.join(root, 'bin/mram.js'), 'compare', file, file]);
  if (c.stdout !== 'Guest RAM is identical.\n') throw new Error(`compare said: ${c.stdout}`);
  rows.compare.push(c.s);
}

const result = {
  machine: `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}, load ${os.loadavg()[0].toFixed(1)}`,
  guestGiB: GIB,
  presentBytes,
  runs: RUNS,
  seconds: rows,
  median: { dd: median(rows.dd), compare: median(rows.compare) },
  // Throughput ratios: > 1 means compare is faster. compare reads every present page twice (A and B).
  ratio: {
    compareOverDdOnce: median(rows.compare.map((c, i) => rows.dd[i] / c)),
    compareOverDdBothInputs: median(rows.compare.map((c, i) => (2 * rows.dd[i]) / c)),
  },
  ddGBps: presentBytes / median(rows.dd) / 1e9,
};
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, `bench/results/compare-${GIB}g.json`), JSON.stringify(result, null, 2) + '\n');
console.log(
  `compare FILE FILE ${result.median.compare.toFixed(2)} s, dd iflag=direct of its present pages ${result.median.dd.toFixed(2)} s (${result.ddGBps.toFixed(2)} GB/s): ` +
    `compare runs at ${result.ratio.compareOverDdOnce.toFixed(2)}× dd reading the present pages once, ${result.ratio.compareOverDdBothInputs.toFixed(2)}× dd reading them for both inputs`,
);
