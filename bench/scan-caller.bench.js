// scanPages on a caller's own buffer (not arena memory) against per-page `Buffer.equals`, and against the
// previous method (copy through a 1 MiB arena stage, then the wasm kernel), paired in one process:
// passes strictly alternate and the ratio is the median of per-pair ratios, so load drift hits both sides.
// Non-zero pages carry one non-zero byte at the END of the page (worst case for a front-to-back compare).
// Writes bench/results/scan-caller.json.   MRAM_BENCH_PAIRS (default 24, four rotations of the order: at RAM speed a loaded machine
// moves single passes by ±50%)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { scanPages, Arena } = await import(path.join(root, 'dist/kernel/index.js'));
const PAGE = 4096;
const PAIRS = Number(process.env.MRAM_BENCH_PAIRS ?? 24);
const ZERO = Buffer.alloc(PAGE);
const SIZES = [
  { label: '1 MiB', bytes: 1 << 20, reps: 200 },
  { label: '512 MiB', bytes: 512 << 20, reps: 1 },
];
const DENSITIES = [
  { label: '0%', every: 0 },
  { label: '1/7', every: 7 },
  { label: '100%', every: 1 },
];

function equalsScan(buf) {
  const pages = buf.length / PAGE;
  const bitmap = new Uint8Array(Math.ceil(pages / 64) * 8);
  let n = 0;
  for (let i = 0, o = 0; i < pages; i++, o += PAGE) {
    if (!buf.subarray(o, o + PAGE).equals(ZERO)) {
      bitmap[i >> 3] |= 1 << (i & 7);
      n++;
    }
  }
  return n;
}

const arena = new Arena({ bytes: 4 << 20 });
function stagedScan(buf) {
  const pages = buf.length / PAGE;
  const bitmap = new Uint8Array(Math.ceil(pages / 64) * 8);
  const stage = arena.alloc(1 << 20);
  let n = 0;
  for (let off = 0; off < buf.length; off += stage.byteLength) {
    const chunk = buf.subarray(off, off + stage.byteLength);
    stage.view.set(chunk);
    n += arena.scan(stage.view.subarray(0, chunk.length), PAGE, bitmap, off / PAGE).nonZeroPages;
  }
  stage.free();
  return n;
}

function time(fn, buf, reps) {
  const t = process.hrtime.bigint();
  let n = 0;
  for (let r = 0; r < reps; r++) n += fn(buf);
  return { s: Number(process.hrtime.bigint() - t) / 1e9 / reps, n };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const size of SIZES) {
  const buf = Buffer.alloc(size.bytes);
  for (const d of DENSITIES) {
    buf.fill(0);
    if (d.every) for (let p = 0; p < size.bytes / PAGE; p += d.every) buf[(p + 1) * PAGE - 1] = 1;
    const expect = equalsScan(buf);
    if (scanPages(buf).nonZeroPages !== expect || stagedScan(buf) !== expect) throw new Error('methods disagree');
    const vsEquals = [];
    const vsStaged = [];
    const gbps = { scanPages: [], equals: [], staged: [] };
    // The order rotates: at RAM speed the pass right after another measured up to 25% differently.
    const fns = [(b) => scanPages(b).nonZeroPages, equalsScan, stagedScan];
    const orders = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]];
    for (let i = 0; i < PAIRS; i++) {
      const secs = [0, 0, 0];
      for (const k of orders[i % orders.length]) secs[k] = time(fns[k], buf, size.reps).s;
      const [a, b, c] = secs;
      vsEquals.push(b / a);
      vsStaged.push(c / a);
      gbps.scanPages.push(size.bytes / a / 1e9);
      gbps.equals.push(size.bytes / b / 1e9);
      gbps.staged.push(size.bytes / c / 1e9);
    }
    const row = {
      size: size.label,
      density: d.label,
      scanPagesGBps: median(gbps.scanPages),
      equalsGBps: median(gbps.equals),
      stagedGBps: median(gbps.staged),
      overEquals: median(vsEquals),
      overStaged: median(vsStaged),
      // Best pass of each side: on a loaded machine the least disturbed passes.
      overEqualsBest: Math.max(...gbps.scanPages) / Math.max(...gbps.equals),
    };
    rows.push(row);
    console.error(`[scan-caller] ${size.label} ${d.label}: scanPages ${row.scanPagesGBps.toFixed(1)} GB/s, Buffer.equals ${row.equalsGBps.toFixed(1)}, staged ${row.stagedGBps.toFixed(1)}; ${row.overEquals.toFixed(2)}× equals (best ${row.overEqualsBest.toFixed(2)}×), ${row.overStaged.toFixed(2)}× staged`);
  }
}
const result = { machine: `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}, load ${os.loadavg()[0].toFixed(1)}`, pairs: PAIRS, rows };
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, 'bench/results/scan-caller.json'), JSON.stringify(result, null, 2) + '\n');
