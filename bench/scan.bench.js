// Zero-page scan benchmark: wasm SIMD vs wasm scalar vs the obvious Node approaches vs native AVX2 C.
// Writes bench/results/scan.json and the "## Zero-page scan" section of bench/README.md.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
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

// Compile bench/native/zeroscan.c and start it as a child that times passes on request (see its header).
function startNative() {
  if (spawnSync('gcc', ['--version']).status !== 0) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-zeroscan-'));
  const exe = path.join(dir, 'zeroscan');
  const cc = spawnSync('gcc', ['-O3', '-march=native', '-o', exe, path.join(root, 'bench/native/zeroscan.c')], { stdio: 'inherit' });
  if (cc.status !== 0) return undefined;
  const child = spawn(exe, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  let pending;
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    for (let i; (i = out.indexOf('\n')) >= 0; out = out.slice(i + 1)) pending?.(JSON.parse(out.slice(0, i)));
  });
  return {
    ask: (cmd) => new Promise((resolve) => ((pending = resolve), child.stdin.write(cmd + '\n'))),
    close: () => (child.stdin.end(), fs.rmSync(dir, { recursive: true, force: true })),
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

// Alternate wasm SIMD and native passes so both see the same machine load; the ratio is the median of pairs.
async function pairWithNative(native, bytes, every, simdPass) {
  const filled = await native.ask(`fill ${bytes} ${every}`);
  if (filled.nonZeroPages !== expectNonZero(bytes, every)) throw new Error('native: wrong non-zero page count');
  const reps = bytes > 64 << 20 ? 1 : 100;
  const wasm = [];
  const nat = [];
  for (let i = 0; i < (bytes > 64 << 20 ? 9 : 41); i++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) simdPass();
    wasm.push((performance.now() - t0) / 1000 / reps);
    nat.push((await native.ask(`pass ${reps} 0`)).seconds / reps);
  }
  return {
    nativeGbps: bytes / median(nat) / 1e9,
    simdGbps: bytes / median(wasm) / 1e9,
    ratio: median(wasm.map((w, i) => nat[i] / w)),
    pairs: wasm.length,
  };
}

function machine() {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    model = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? model;
  } catch {}
  return { cpu: model, cores: os.cpus().length, node: process.version, os: `${os.type()} ${os.release()}`, loadavg: os.loadavg().map((x) => +x.toFixed(2)) };
}

const expectNonZero = (bytes, every) => (every ? Math.ceil(bytes / PAGE / every) : 0);
const rows = [];
const native = startNative();
const loadBefore = os.loadavg()[0];
const started = performance.now();

for (const { label: size, bytes } of SIZES) {
  const big = bytes > 64 << 20;
  for (const { label: density, every } of DENSITIES) {
    fill(bytes, every);
    const tasks = makeTasks(bytes);
    // Cache-resident runs are cheap: sample for a while. 1 GiB runs: one warm-up pass, 5 timed passes.
    const bench = new Bench(
      big
        ? { time: 1, iterations: 5, warmupTime: 1, warmupIterations: 1, throws: true }
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
    if (native) {
      const n = await pairWithNative(native, bytes, every, tasks['wasm SIMD']);
      row.gbps['native AVX2'] = n.nativeGbps;
      row.paired = n;
    }
    row.simdVsBufferEquals = row.gbps['wasm SIMD'] / row.gbps['Buffer.equals'];
    row.simdVsNative = native ? row.paired.ratio : null;
    rows.push(row);
    console.error(`${size} ${density}: done`);
  }
}
native?.close();

const fmt = (x) => (x == null ? 'n/a' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const columns = [...METHODS, 'native AVX2'];
const table = [
  `| size | non-zero pages | ${columns.join(' | ')} | SIMD / Buffer.equals | SIMD / native |`,
  `|---|---|${columns.map(() => '---:').join('|')}|---:|---:|`,
  ...rows.map(
    (r) =>
      `| ${r.size} | ${r.density} | ${columns.map((c) => fmt(r.gbps[c])).join(' | ')} | ${fmt(r.simdVsBufferEquals)}× | ${r.simdVsNative == null ? 'n/a' : fmt(r.simdVsNative) + '×'} |`,
  ),
].join('\n');

// A target is met only if it holds at every density (the worst row); the mean is reported alongside.
const ratios = (size, key) => rows.filter((r) => r.size === size).map((r) => r[key] ?? NaN);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const targets = [
  { target: 'wasm SIMD ≥ 1.3× Buffer.equals, 1 MiB', size: '1 MiB', key: 'simdVsBufferEquals', min: 1.3 },
  { target: 'wasm SIMD ≥ 1.0× Buffer.equals, 1 GiB', size: '1 GiB', key: 'simdVsBufferEquals', min: 1.0 },
  { target: 'wasm SIMD ≥ 0.95× native AVX2, 1 GiB', size: '1 GiB', key: 'simdVsNative', min: 0.95 },
].map((t) => {
  const xs = ratios(t.size, t.key);
  const worst = Math.min(...xs);
  return { target: t.target, min: t.min, worst, mean: mean(xs), met: worst >= t.min };
});

const info = machine();
const seconds = (performance.now() - started) / 1000;
console.log(table);
for (const t of targets) console.log(`${t.met ? 'MET ' : 'MISS'} ${t.target}: worst density ${fmt(t.worst)}×, mean ${fmt(t.mean)}×`);
console.log(`${info.cpu}, ${info.cores} cores, node ${info.node}; ${seconds.toFixed(0)} s`);

fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(
  path.join(root, 'bench/results/scan.json'),
  JSON.stringify({ date: new Date().toISOString(), machine: info, pageSize: PAGE, unit: 'GB/s (1e9 bytes/s, median pass)', rows, targets }, null, 2) + '\n',
);

const section = `## Zero-page scan

\`npm run bench\` (\`bench/scan.bench.js\`, tinybench) times one full pass that classifies every 4 KiB page
and writes the mapped-ram bitmap. Throughput is GB/s (10⁹ bytes/s) of the median pass; 1 MiB stays in
cache, 1 GiB streams from RAM (5 timed passes after one warm-up). The native column and the SIMD / native
ratio come from a separate paired run that alternates one wasm SIMD and one native pass (batches of 100 at
1 MiB) and takes the median of the per-pair ratios, so load drifting on a shared machine hits both sides.
Non-zero pages carry a single non-zero byte at the **end** of the page — the worst case for a front-to-back compare such as \`Buffer.equals\`,
and the case the first/middle/last-word sampling (shared by the wasm kernel, the C reference and
QEMU's \`buffer_is_zero\`) rejects after touching one cache line, which is why the 100% rows are so fast.

- **wasm SIMD** — \`scanSimd\` in \`assembly/index.ts\`: sample 3 words, then OR-reduce 8×v128 (128 B) per \`v128.any_true\`.
- **wasm scalar** — \`scanScalar\`: same shape with 8×u64 per test.
- **Buffer.equals** — \`buf.subarray(o, o + 4096).equals(zeroPage)\` page by page.
- **Uint32Array loop** — OR 8 words at a time, stop at the first non-zero word.
- **native AVX2** — \`bench/native/zeroscan.c\`, \`gcc -O3 -march=native\`, sample then OR-reduce 4×256-bit per \`vptest\`.

Machine: ${info.cpu}, ${info.cores} cores, Node ${info.node}, ${info.os}; 1-minute load average ${loadBefore.toFixed(1)} at start,
${info.loadavg[0].toFixed(1)} at end (above ~1 means other jobs competed for the cores and memory bus). Raw numbers: \`bench/results/scan.json\`.

${table}

Targets (median-pass ratio; met only if it holds at every density — worst density first, mean of the three in brackets):

${targets.map((t) => `- ${t.met ? '✅' : '❌'} ${t.target}: ${fmt(t.worst)}× (${fmt(t.mean)}×)`).join('\n')}

Notes from profiling the 1 GiB case (TurboFan output via \`node --print-wasm-code\`; interleaved A/B passes):

- The kernel compiles to the expected loop: 8 \`vmovdqu xmm\` + 7 \`vpor\` + \`vptest\` per 128 B, no bounds
  checks (guard-page memory), loop unrolled 2×. It is memory/latency bound at 1 GiB, where AVX2 needs about
  half the instructions per byte (4 × 256-bit loads, folded into \`vpor\`), so it keeps more lines in flight;
  the same C with 128-bit SSE loads is 20–50% slower than AVX2 here. wasm has no 256-bit vectors.
- The first/middle/last-word sample costs ~15–20% at 1 GiB on all-zero memory (its out-of-order loads
  break the sequential stream the prefetcher follows; measured with the sample loads kept but the branch
  removed), while making pages whose non-zero byte is near the end ~5–10× cheaper. So both the wasm kernel
  and the C reference sample only the page right after a non-zero page: +9% at 0%, +18% at 1/7, unchanged
  at 100% versus always sampling (interleaved A/B, wasm). Results are exact either way.
- 256 B per \`any_true\` was no faster than 128 B; a two-pass variant (sample 64 pages, then stream the
  candidates) matched unsampled streaming at 0% but lost 30% at 1/7 density.
- This is a 2-core VM shared with other jobs: absolute 1 GiB numbers swing ±40% between runs (more when
  the load average is high), so read the ratios, which come from the same run.
`;

const readme = path.join(root, 'bench/README.md');
let text = fs.existsSync(readme) ? fs.readFileSync(readme, 'utf8') : '# Benchmarks\n\n';
// Replace only our section; sections other benchmarks append are left alone.
const re = /## Zero-page scan\n[\s\S]*?(?=\n## |$)/;
text = re.test(text) ? text.replace(re, section) : text.trimEnd() + '\n\n' + section;
fs.writeFileSync(readme, text);
