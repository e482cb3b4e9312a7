// Zero-page scan benchmark: wasm SIMD vs wasm scalar vs the obvious Node approaches vs native AVX2 C.
// Writes bench/results/scan.json and the "## Zero-page scan" section of bench/README.md.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';

const root = fileURLToPath(new URL('..', import.meta.url));
const wasmPath = path.join(root, 'build/mram.wasm');
const PAGE = 4096;
const SIZES = [
  { label: '1 MiB', bytes: 1 << 20 },
  { label: '1 GiB', bytes: 1 << 30 },
];
const DENSITIES = [
  { label: '0%', every: 0 },
  { label: '1/7', every: 7 },
  { label: '100%', every: 1 },
];
const METHODS = ['wasm SIMD', 'wasm scalar', 'Buffer.equals', 'Uint32Array loop'];

// Rebuild the kernel when its source is newer than the binary, so the bench measures what is checked in.
const src = path.join(root, 'assembly/index.ts');
if (!fs.existsSync(wasmPath) || fs.statSync(wasmPath).mtimeMs < fs.statSync(src).mtimeMs) {
  execFileSync('npm', ['run', '--silent', 'build:wasm'], { cwd: root, stdio: 'inherit' });
}

// Layout: [0, 64 KiB) kernel reserve, then up to 1 GiB of pages, then the bitmap.
const DATA = 65536;
const MAX = SIZES[SIZES.length - 1].bytes;
const BITMAP = DATA + MAX;
const memPages = (BITMAP + MAX / PAGE / 8) / 65536 + 1;
const memory = new WebAssembly.Memory({ initial: memPages, maximum: memPages });
const kernel = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory } }).exports;
const ZERO = Buffer.alloc(PAGE);
const jsBitmap = new Uint8Array(MAX / PAGE / 8);

function fill(bytes, every) {
  const view = new Uint8Array(memory.buffer, DATA, bytes);
  view.fill(0);
  // One non-zero byte at the END of the page: the worst case for a front-to-back compare.
  if (every) for (let p = 0; p < bytes / PAGE; p += every) view[(p + 1) * PAGE - 1] = 1;
}

function makeTasks(bytes) {
  const buf = Buffer.from(memory.buffer, DATA, bytes);
  const u32 = new Uint32Array(memory.buffer, DATA, bytes / 4);
  const pages = bytes / PAGE;
  return {
    'wasm SIMD': () => kernel.scanSimd(DATA, bytes, PAGE, BITMAP, 0),
    'wasm scalar': () => kernel.scanScalar(DATA, bytes, PAGE, BITMAP, 0),
    'Buffer.equals': () => {
      jsBitmap.fill(0, 0, pages / 8);
      let n = 0;
      for (let i = 0, o = 0; i < pages; i++, o += PAGE) {
        if (!buf.subarray(o, o + PAGE).equals(ZERO)) {
          jsBitmap[i >> 3] |= 1 << (i & 7);
          n++;
        }
      }
      return n;
    },
    'Uint32Array loop': () => {
      jsBitmap.fill(0, 0, pages / 8);
      let n = 0;
      const words = PAGE / 4;
      for (let i = 0, w = 0; i < pages; i++, w += words) {
        let acc = 0;
        for (let j = w, end = w + words; j < end; j += 8) {
          acc |= u32[j] | u32[j + 1] | u32[j + 2] | u32[j + 3] | u32[j + 4] | u32[j + 5] | u32[j + 6] | u32[j + 7];
          if (acc !== 0) break;
        }
        if (acc !== 0) {
          jsBitmap[i >> 3] |= 1 << (i & 7);
          n++;
        }
      }
      return n;
    },
  };
}

function buildNative() {
  if (spawnSync('gcc', ['--version']).status !== 0) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-zeroscan-'));
  const exe = path.join(dir, 'zeroscan');
  const cc = spawnSync('gcc', ['-O3', '-march=native', '-o', exe, path.join(root, 'bench/native/zeroscan.c')], { stdio: 'inherit' });
  return cc.status === 0 ? { exe, dir } : undefined;
}

function runNative(native, bytes, every) {
  if (!native) return undefined;
  return JSON.parse(execFileSync(native.exe, [String(bytes), String(every)], { encoding: 'utf8' }));
}

// Native runs bracket the JS runs (one before, one after) so drifting load on a shared machine hits both sides.
function mergeNative(before, after) {
  if (!before || !after) return undefined;
  const samples = [...before.samples, ...after.samples].sort((a, b) => a - b);
  return { nonZeroPages: after.nonZeroPages, p50: samples[samples.length >> 1], min: samples[0], samples: samples.length };
}

function machine() {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    model = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? model;
  } catch {}
  return { cpu: model, cores: os.cpus().length, node: process.version, os: `${os.type()} ${os.release()}` };
}

const expectNonZero = (bytes, every) => (every ? Math.ceil(bytes / PAGE / every) : 0);
const rows = [];
const native = buildNative();
const started = performance.now();

for (const { label: size, bytes } of SIZES) {
  const big = bytes > 64 << 20;
  for (const { label: density, every } of DENSITIES) {
    fill(bytes, every);
    const tasks = makeTasks(bytes);
    const nativeBefore = runNative(native, bytes, every);
    // Cache-resident runs are cheap: sample for a while. 1 GiB runs: one warm-up pass, 7 timed passes.
    const bench = new Bench(
      big
        ? { time: 1, iterations: 7, warmupTime: 1, warmupIterations: 1, throws: true }
        : { time: 250, iterations: 64, warmupTime: 100, throws: true },
    );
    for (const name of METHODS) {
      const got = tasks[name]();
      if (got !== expectNonZero(bytes, every)) throw new Error(`${name}: ${got} non-zero pages, expected ${expectNonZero(bytes, every)}`);
      bench.add(name, tasks[name]);
    }
    await bench.run();
    const row = { size, bytes, density, every, gbps: {}, bestGbps: {}, stats: {} };
    const gbps = (ms) => bytes / (ms / 1000) / 1e9;
    for (const task of bench.tasks) {
      const { latency } = task.result;
      row.gbps[task.name] = gbps(latency.p50);
      row.bestGbps[task.name] = gbps(latency.min);
      row.stats[task.name] = { p50ms: latency.p50, minMs: latency.min, meanMs: latency.mean, rme: latency.rme, samples: latency.samplesCount };
    }
    const n = mergeNative(nativeBefore, runNative(native, bytes, every));
    if (n) {
      if (n.nonZeroPages !== expectNonZero(bytes, every)) throw new Error('native: wrong non-zero page count');
      row.gbps['native AVX2'] = gbps(n.p50 * 1000);
      row.bestGbps['native AVX2'] = gbps(n.min * 1000);
      row.stats['native AVX2'] = { p50ms: n.p50 * 1000, minMs: n.min * 1000, samples: n.samples };
    }
    row.simdVsBufferEquals = row.gbps['wasm SIMD'] / row.gbps['Buffer.equals'];
    row.simdVsNative = n ? row.gbps['wasm SIMD'] / row.gbps['native AVX2'] : null;
    row.simdVsNativeBest = n ? row.bestGbps['wasm SIMD'] / row.bestGbps['native AVX2'] : null;
    rows.push(row);
    console.error(`${size} ${density}: done`);
  }
}
if (native) fs.rmSync(native.dir, { recursive: true, force: true });

const fmt = (x) => (x == null ? 'n/a' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const columns = [...METHODS, 'native AVX2'];
const table = [
  `| size | non-zero pages | ${columns.join(' | ')} | SIMD / Buffer.equals | SIMD / native | SIMD / native (best pass) |`,
  `|---|---|${columns.map(() => '---:').join('|')}|---:|---:|---:|`,
  ...rows.map(
    (r) =>
      `| ${r.size} | ${r.density} | ${columns.map((c) => fmt(r.gbps[c])).join(' | ')} | ${fmt(r.simdVsBufferEquals)}× | ${r.simdVsNative == null ? 'n/a' : fmt(r.simdVsNative) + '×'} | ${r.simdVsNativeBest == null ? 'n/a' : fmt(r.simdVsNativeBest) + '×'} |`,
  ),
].join('\n');

// Targets average the ratio over the three densities of a size.
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ratio = (size, key) => mean(rows.filter((r) => r.size === size).map((r) => r[key] ?? NaN));
const targets = [
  { target: 'wasm SIMD ≥ 1.3× Buffer.equals, 1 MiB', value: ratio('1 MiB', 'simdVsBufferEquals'), min: 1.3 },
  { target: 'wasm SIMD ≥ 1.0× Buffer.equals, 1 GiB', value: ratio('1 GiB', 'simdVsBufferEquals'), min: 1.0 },
  { target: 'wasm SIMD ≥ 0.95× native AVX2, 1 GiB', value: ratio('1 GiB', 'simdVsNative'), min: 0.95 },
].map((t) => ({ ...t, met: t.value >= t.min }));
const worst = (size, key) => Math.min(...rows.filter((r) => r.size === size).map((r) => r[key] ?? NaN));
for (const t of targets) {
  const [size, key] = t.target.includes('native') ? ['1 GiB', 'simdVsNative'] : [t.target.endsWith('1 MiB') ? '1 MiB' : '1 GiB', 'simdVsBufferEquals'];
  t.worst = worst(size, key);
}

const info = machine();
const seconds = (performance.now() - started) / 1000;
console.log(table);
for (const t of targets) console.log(`${t.met ? 'MET ' : 'MISS'} ${t.target}: mean ${fmt(t.value)}×, worst density ${fmt(t.worst)}×`);
console.log(`${info.cpu}, ${info.cores} cores, node ${info.node}; ${seconds.toFixed(0)} s`);

fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(
  path.join(root, 'bench/results/scan.json'),
  JSON.stringify({ date: new Date().toISOString(), machine: info, pageSize: PAGE, unit: 'GB/s (1e9 bytes/s, median pass)', rows, targets }, null, 2) + '\n',
);

const section = `## Zero-page scan

\`npm run bench\` (\`bench/scan.bench.js\`, tinybench) times one full pass that classifies every 4 KiB page
and writes the mapped-ram bitmap. Throughput is GB/s (10⁹ bytes/s) of the median pass; 1 MiB stays in
cache, 1 GiB streams from RAM (7 timed passes after one warm-up; the native binary runs once before and
once after the JS runs and its passes are pooled, so load drifting on a shared machine hits both sides). Non-zero pages carry a single non-zero
byte at the **end** of the page — the worst case for a front-to-back compare such as \`Buffer.equals\`,
and the case the first/middle/last-word sampling (shared by the wasm kernel, the C reference and
QEMU's \`buffer_is_zero\`) rejects after touching one cache line, which is why the 100% rows are so fast.

- **wasm SIMD** — \`scanSimd\` in \`assembly/index.ts\`: sample 3 words, then OR-reduce 8×v128 (128 B) per \`v128.any_true\`.
- **wasm scalar** — \`scanScalar\`: same shape with 8×u64 per test.
- **Buffer.equals** — \`buf.subarray(o, o + 4096).equals(zeroPage)\` page by page.
- **Uint32Array loop** — OR 8 words at a time, stop at the first non-zero word.
- **native AVX2** — \`bench/native/zeroscan.c\`, \`gcc -O3 -march=native\`, sample then OR-reduce 4×256-bit per \`vptest\`.

Machine: ${info.cpu}, ${info.cores} cores, Node ${info.node}, ${info.os}. Raw numbers: \`bench/results/scan.json\`.

${table}

Targets (median-pass ratio averaged over the three densities; worst density in brackets):

${targets.map((t) => `- ${t.met ? '✅' : '❌'} ${t.target}: ${fmt(t.value)}× (${fmt(t.worst)}×)`).join('\n')}

Notes from profiling the 1 GiB case (TurboFan output via \`node --print-wasm-code\`; interleaved A/B passes):

- The kernel compiles to the expected loop: 8 \`vmovdqu xmm\` + 7 \`vpor\` + \`vptest\` per 128 B, no bounds
  checks (guard-page memory), loop unrolled 2×. It is memory/latency bound at 1 GiB, where AVX2 needs about
  half the instructions per byte (4 × 256-bit loads, folded into \`vpor\`), so it keeps more lines in flight;
  the same C with 128-bit SSE loads is 20–50% slower than AVX2 here. wasm has no 256-bit vectors.
- The first/middle/last-word sample costs ~15–20% at 1 GiB on all-zero memory (it breaks the sequential
  stream the prefetcher follows; measured with the sample loads kept but the branch removed), and
  makes pages whose non-zero byte is near the end ~5–10× cheaper. It stays, as in QEMU.
- 256 B per \`any_true\` was no faster than 128 B; a two-pass variant (sample 64 pages, then stream the
  candidates) matched unsampled streaming at 0% but lost 30% at 1/7 density.
- This is a 2-core VM shared with other jobs: 1 GiB numbers swing ±40% between runs, so compare ratios
  from the same run, and see the best-pass column for the uncontended capability.
`;

const readme = path.join(root, 'bench/README.md');
let text = fs.existsSync(readme) ? fs.readFileSync(readme, 'utf8') : '# Benchmarks\n\n';
// Replace only our section; sections other benchmarks append are left alone.
const re = /## Zero-page scan\n[\s\S]*?(?=\n## |$)/;
text = re.test(text) ? text.replace(re, section) : text.trimEnd() + '\n\n' + section;
fs.writeFileSync(readme, text);
