// `npm run bench:limits`: every #17 bench in one command, then one table and one plot.
//   read-limits.js        verify, verify --digest, verify --content-digest against dd / openssl
//   scan-caller.bench.js  scanPages on a caller's buffer against per-page Buffer.equals
//   scan.bench.js         the in-arena kernel against native AVX2 C (1 GiB rows)
//   scale.js              a 256 GiB guest: every command, time and peak RSS
//   write-limits.js       convert and extract against C writers of the same page runs (bench/native/runwriter.c)
// Each writes its own JSON under bench/results; MRAM_LIMITS_SKIP=scan,scale,... reuses the JSON a
// bench left earlier instead of running it (rows are marked missing when there is none).
// Writes bench/results/limits.json, the table between the limits markers of bench/README.md and
// bench/results/limits.svg (throughput of each command against its limit).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { barChart, fmt } from './lib/svg.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const results = path.join(root, 'bench/results');
const skip = new Set((process.env.MRAM_LIMITS_SKIP ?? '').split(',').filter(Boolean));
const log = (...a) => console.error('[limits]', ...a);
const BENCHES = [
  { key: 'read', script: 'read-limits.js', json: 'read-limits.json' },
  { key: 'scan-caller', script: 'scan-caller.bench.js', json: 'scan-caller.json' },
  { key: 'scan', script: 'scan.bench.js', json: 'scan.json' },
  { key: 'scale', script: 'scale.js', json: 'scale.json' },
  { key: 'write', script: 'write-limits.js', json: 'write-limits.json' },
];

if (!fs.existsSync(path.join(root, 'dist/cli/mram.cjs'))) spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });

/** Runs a bench unless skipped or absent; returns its JSON (null when there is none). */
function runBench(b) {
  const script = path.join(root, 'bench', b.script);
  if (!skip.has(b.key) && fs.existsSync(script)) {
    log(`running ${b.script}`);
    const r = spawnSync(process.execPath, [script], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) log(`${b.script} exited ${r.status}: using the JSON it left, if any`);
  }
  const json = path.join(results, b.json);
  return fs.existsSync(json) ? JSON.parse(fs.readFileSync(json, 'utf8')) : null;
}

const missing = (command, work, target) => ({ command, work, mram_s: null, limit: null, limit_s: null, ratio: null, target, met: null, missing: true });

/** scanPages rows: the worst density at each size (paired median ratio). */
function scanCallerRows(j) {
  const specs = [
    { size: '1 MiB', bytes: 1 << 20, target: 1.3 },
    { size: '512 MiB', bytes: 512 << 20, target: 1.0 },
  ];
  return specs.map(({ size, bytes, target }) => {
    const command = `scanPages, caller's buffer, ${size}`;
    const rows = j?.rows.filter((r) => r.size === size) ?? [];
    if (!rows.length) return missing(command, size, `≥ ${target}×`);
    const worst = rows.reduce((a, b) => (b.overEquals < a.overEquals ? b : a));
    return {
      command,
      work: `${size}, worst of 0% / 1/7 / 100% non-zero (${worst.density})`,
      work_bytes: bytes,
      mram_s: bytes / worst.scanPagesGBps / 1e9,
      limit: 'per-page Buffer.equals (paired)',
      limit_s: bytes / worst.equalsGBps / 1e9,
      ratio: worst.overEquals,
      target: `≥ ${target}×`,
      met: worst.overEquals >= target,
    };
  });
}

/** The in-arena kernel against native AVX2 C at 1 GiB, worst density (paired ratio). */
function kernelRow(j) {
  const command = 'in-arena kernel (wasm SIMD scan)';
  const rows = j?.rows.filter((r) => r.size === '1 GiB' && r.paired) ?? [];
  if (!rows.length) return missing(command, '1 GiB', '≥ 0.95×');
  const worst = rows.reduce((a, b) => (b.paired.ratio < a.paired.ratio ? b : a));
  const bytes = 2 ** 30;
  return {
    command,
    work: `1 GiB in memory, worst of 0% / 1/7 / 100% (${worst.density})`,
    work_bytes: bytes,
    mram_s: bytes / worst.paired.simdGbps / 1e9,
    limit: 'native AVX2 C on the same memory (bench/native/zeroscan.c, paired)',
    limit_s: bytes / worst.paired.nativeGbps / 1e9,
    ratio: worst.paired.ratio,
    target: '≥ 0.95×',
    met: worst.paired.ratio >= 0.95,
  };
}

const fromJson = (j, fallback) => (j?.rows?.length ? j.rows : fallback);
const read = runBench(BENCHES[0]);
const scanCaller = runBench(BENCHES[1]);
const scan = runBench(BENCHES[2]);
const scale = runBench(BENCHES[3]);
const write = runBench(BENCHES[4]);
const rows = [
  ...fromJson(read, [missing('verify', '2 GiB guest', '≥ 0.8×'), missing('verify --digest', '2 GiB guest', '≥ 0.8×')]),
  ...scanCallerRows(scanCaller),
  kernelRow(scan),
  ...fromJson(write, [missing('convert, extract (bench/write-limits.js)', '2 GiB guest', '≥ 0.9× / ≥ 0.8×')]),
  ...fromJson(scale, [missing('scale (bench/scale.js)', '256 GiB guest', '≤ 2 s / < 1 s; RSS < 200 MiB')]),
];
// The benches run mram without the start-up extras this machine's environment sets (bench/lib/measure.js).
const environment = write?.environment ?? read?.environment ?? null;
const summary = { date: new Date().toISOString(), machine: `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}`, loadavg: os.loadavg(), environment, rows };
fs.mkdirSync(results, { recursive: true });
fs.writeFileSync(path.join(results, 'limits.json'), JSON.stringify(summary, null, 2) + '\n');
writeReadme(rows);
fs.writeFileSync(path.join(results, 'limits.svg'), plot(rows));
log(`wrote bench/results/limits.json, limits.svg and the table in bench/README.md (${rows.filter((r) => r.met === false && !r.blocked).length} targets not met, ${rows.filter((r) => r.blocked).length} blocked, ${rows.filter((r) => r.missing).length} missing)`);

function cell(v, unit = '') {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  // Sub-0.1 s times (in-memory scans) in ms, so they do not print as 0.00 s.
  return unit === ' s' && v < 0.1 ? `${fmt(v * 1e3)} ms` : `${fmt(v)}${unit}`;
}

function writeReadme(rows) {
  const readme = path.join(root, 'bench/README.md');
  const start = '<!-- limits:start -->';
  const end = '<!-- limits:end -->';
  const lines = [
    start,
    `Generated by \`npm run bench:limits\` (${summary.date.slice(0, 10)}, ${summary.machine}, load ${summary.loadavg[0].toFixed(1)}); raw rows: \`bench/results/limits.json\`, plot: \`bench/results/limits.svg\`.`,
    ...(environment?.removed.length
      ? ['', `Every command ran without ${environment.removed.map((k) => `\`${k}\``).join(', ')}, which this machine sets and a libvirt host does not: \`node -e 0\` took ${cell(environment.node_start_s, ' s')} without, ${cell(environment.node_start_with_removed_s, ' s')} with it.`]
      : []),
    '',
    '| command | work | mram | limit | limit time | ratio | target | met | peak RSS |',
    '|---|---|---:|---|---:|---:|---|---|---:|',
    ...rows.map((r) => `| ${r.command} | ${r.work ?? ''} | ${cell(r.mram_s, ' s')} | ${r.limit ?? '—'} | ${cell(r.limit_s, ' s')} | ${cell(r.ratio, '×')} | ${r.target ?? ''} | ${r.missing ? 'missing' : r.blocked ? `blocked ${r.blocked}` : r.met === null || r.met === undefined ? '—' : r.met ? '✅' : '❌'} | ${cell(r.rss_mib, ' MiB')} |`),
    end,
  ];
  let text = fs.existsSync(readme) ? fs.readFileSync(readme, 'utf8') : '# Benchmarks\n';
  const block = lines.join('\n');
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n## Limits of #17 (all commands)\n\n${block}\n`;
  fs.writeFileSync(readme, text);
}

/**
 * Throughput (work bytes / s) of mram and of its limit, per row that has both, in two panels with
 * their own axes (whole-process commands read from disk; in-memory scans run 10–100× faster).
 * Scale rows have time budgets, not limits: they stay in the table.
 */
function plot(rows) {
  const group = (r) => {
    const b = r.work_bytes ?? r.bytes;
    const bars = [{ label: `mram ${r.command}`.slice(0, 52), median: b / r.mram_s / 1e9, highlight: true }];
    if (Number.isFinite(r.limit_s)) bars.push({ label: String(r.limit).slice(0, 52), median: b / r.limit_s / 1e9 });
    // A read floor slower than the limit is why a line is blocked: show it beside the two.
    if (r.blocked && Number.isFinite(r.dd_s)) bars.push({ label: 'dd iflag=direct of the file (the read floor)', median: b / r.dd_s / 1e9 });
    return { title: `${r.command}: ${cell(r.ratio, '×')} of its limit (target ${r.target ?? '—'})${r.blocked ? '; blocked by the disk' : ''}`, bars };
  };
  const plotted = rows.filter((r) => !r.scale && !r.missing && Number.isFinite(r.mram_s) && Number.isFinite(r.work_bytes ?? r.bytes));
  const panels = [
    { title: 'Whole commands against their limits (#17)', rows: plotted.filter((r) => r.mram_s >= 0.1) },
    { title: 'In-memory scans against their references (#17)', rows: plotted.filter((r) => r.mram_s < 0.1) },
  ].filter((p) => p.rows.length);
  const subtitle = `${summary.machine}; load ${summary.loadavg[0].toFixed(1)}; 256 GiB scale rows: see the table`;
  const svgs = panels.map((p) => barChart({ title: p.title, subtitle, groups: p.rows.map(group) }));
  // Stack the panels: each is a whole SVG document; nested <svg> elements keep their own coordinates.
  let y = 0;
  const inner = svgs.map((doc) => {
    const h = Number(/height="(\d+(?:\.\d+)?)"/.exec(doc)[1]);
    const body = doc.replace(/^<\?xml[^>]*>\s*/, '').replace('<svg ', `<svg y="${y}" `);
    y += h;
    return body;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="900" height="${y}" viewBox="0 0 900 ${y}">\n${inner.join('\n')}</svg>\n`;
}
