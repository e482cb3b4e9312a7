// Markdown for the generated part of bench/README.md's "End to end" section (between its
// <!-- table:e2e --> markers): run and machine, the table, targets, scan summary, profiles.
// The method text around it is kept by hand in the README; findings go in bench/FINDINGS.md.
import { fmt } from './svg.js';

const range = (s, f = fmt) => (s && Number.isFinite(s.median) ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : '—');
const mib = (v) => fmt(v);

/** The generated block of the e2e section for one result of bench/results/e2e.json. */
export function renderTables(r) {
  const s = r.summary;
  const m = r.machine;
  const N = r.config.presentBytes;
  const vs = {
    convert: ['ddWrite', 'dd write'],
    ddLayout: ['ddWrite', 'dd write'],
    qemuSave1: ['convert', 'mram convert'],
    qemuSaveMfd2: ['convert', 'mram convert'],
    qemuSaveMfd2Dio: ['convert', 'mram convert'],
    verifyDigest: ['ddRead', 'dd read'],
    verifyDigestQemu: ['ddRead', 'dd read'],
    extract: ['ddRead', 'dd read'],
    sha256sum: ['ddRead', 'dd read'],
    qemuLoadOurs: ['qemuLoadQemu', "QEMU's file"],
  };
  const pairRatio = (a, b) => {
    const xs = r.runs.map((run) => run[b].secs / run[a].secs).sort((x, y) => x - y);
    const med = xs.length % 2 ? xs[xs.length >> 1] : (xs[xs.length / 2 - 1] + xs[xs.length / 2]) / 2;
    return `${fmt(med)}× (${fmt(xs[0])}–${fmt(xs[xs.length - 1])})`;
  };
  const rows = Object.entries(s).map(([k, t]) => {
    const v = k === 'convert' && s.ddLayout ? null : vs[k];
    // "speed vs": how many times faster the row is than the reference (time ratio, pair by pair)
    const rel = k === 'convert' && s.ddLayout ? `${pairRatio(k, 'ddWrite')} vs dd; ${pairRatio(k, 'ddLayout')} vs dd at the slots` : v ? `${pairRatio(k, v[0])} vs ${v[1]}` : '—';
    const pc = t.residentPct ? `${fmt(t.residentPct.max)}% (${mib(t.residentMiB.max)} MiB)` : '—';
    const cd = t.cachedDeltaMiB ? `${fmt(t.cachedDeltaMiB.median)} MiB` : '—';
    const rss = t.rssMiB ? `${fmt(t.rssMiB.max)}` : '—';
    return `| ${t.phase} | ${t.mram ? `**${t.label}**` : t.label} | ${range(t.secs)} | ${t.phase === 'fixed' ? '—' : range(t.gbps)} | ${rel} | ${pc} | ${cd} | ${rss} |`;
  });
  const tgt = r.targets.map((t) => `- ${t.met ? '✅ met' : '❌ not met'} — ${t.name}: ${t.figure}`);
  const checks = Object.entries(r.checks).map(([k, v]) => `${k} ${v ? '✓' : '✗'}`).join(', ');
  const scanLines = r.scan
    ? Object.entries(r.scan.sizes).map(
        ([size, x]) =>
          `| ${size} | ${fmt(x.simdVsBufferEquals)}× (worst ${fmt(x.simdVsBufferEqualsWorst)}×) | ${fmt(x.simdVsNative)}× (worst ${fmt(x.simdVsNativeWorst)}×) | ${Object.entries(x.simdGbps).map(([d, g]) => `${d}: ${fmt(g)}`).join(', ')} |`,
      )
    : [];
  const prof = r.profiles
    ? Object.entries(r.profiles).map(([cmd, p]) => {
        const top = p.functions.slice(0, 8).map((f) => `${f.pct}% ${f.name.replace(/\|/g, '\\|')}`);
        const files = p.files.slice(0, 6).map((f) => `${f.pct}% ${f.name}`);
        return `- **${cmd}** (${fmt(p.wallSecs)} s wall, ${fmt(p.totalMs / 1000)} s profiled). Self time by function: ${top.join('; ')}. By file: ${files.join('; ')}.`;
      })
    : ['- (profiles not collected: run without `--no-profile`)'];
  return `Run: ${r.config.guestMiB / 1024} GiB guest, ${r.config.presentPages} of ${r.config.pages} pages (${fmt(N / 2 ** 30)} GiB, N = ${N} bytes) non-zero; plain-stream input ${fmt(r.config.inputStreamBytes / 2 ** 30)} GiB; ${r.config.runs} runs.
Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, ${m.kernel}, ${m.filesystem}, node ${m.node}, QEMU ${m.qemu},
${m.dd}; ${r.date}, ${fmt(r.durationSecs / 60)} min; mram at ${r.build?.commit ?? '?'}${r.build?.srcDirty ? ' (+ uncommitted src changes)' : ''}, dist built ${r.build?.distBuilt ?? '?'}. Raw numbers: [\`results/e2e.json\`](results/e2e.json).
Checks: ${checks}.

![throughput per tool](results/e2e-throughput.svg)

| phase | tool | seconds | GB/s | speed vs reference (pairwise) | page cache: output resident | Cached Δ | peak RSS MiB |
|---|---|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

Targets:

${tgt.join('\n')}
${s.nodeStart ? `\nNode's start-up alone (\`node -e 0\`, every run): ${range(s.nodeStart.secs)} s, ${fmt((100 * s.nodeStart.secs.median) / s.convert.secs.median)}% of the median convert; dd has no such cost, so on a small guest it weighs on the convert/dd ratio (the ratio is measured on the whole process all the same).\n` : ''}
Kernel scan benchmark (\`bench/results/scan.json\`, ${r.scan?.date ?? 'n/a'}; not rerun here unless \`--rerun-scan\`):

| size | wasm SIMD / Buffer.equals (mean of densities) | wasm SIMD / native AVX2 | wasm SIMD GB/s by density |
|---|---:|---:|---|
${scanLines.join('\n')}

### Profiles (\`node --cpu-prof\`, main thread, one extra run of each command)

${prof.join('\n')}
`;
}
