// Markdown for the "## End to end" section of bench/README.md, and in-place replacement of that
// section (everything from its heading to the next "## " heading) so other sections stay intact.
import { fmt } from './svg.js';
import { FINDINGS } from './notes.js';

/** Replaces `heading`'s section (up to the next level-2 heading) or appends it at the end. */
export function replaceSection(text, heading, body) {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) return text.replace(/\n*$/, '\n\n') + body.replace(/\n*$/, '\n');
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  const after = lines.slice(end).join('\n');
  return [...lines.slice(0, start), body.replace(/\n*$/, ''), ...(after ? ['', after] : [''])].join('\n');
}

const range = (s, f = fmt) => (s && Number.isFinite(s.median) ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : '—');
const mib = (v) => fmt(v);

export function renderSection(r) {
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
  return `## End to end

\`npm run bench:e2e\` (\`bench/e2e.js\`; \`--runs N\` (default 3), \`--gib G\` guest size (default 4, the size issue #4 names; ≤ 4),
\`--dir DIR\` work directory on the filesystem to test, \`--no-profile\`, \`--rerun-scan\`, \`--keep\`).
Whole processes on a ${r.config.guestMiB / 1024} GiB q35/TCG guest whose RAM is a \`memory-backend-file\` on
/dev/shm: runs of 1–256 random pages alternate with runs of 1–256 zero pages, so
${r.config.presentPages} of ${r.config.pages} pages (${fmt(N / 2 ** 30)} GiB) are non-zero random data.
The input of \`mram convert\` is QEMU's plain-stream save of that guest (${fmt(r.config.inputStreamBytes / 2 ** 30)} GiB, read from
the page cache); dd writes exactly the non-zero pages' bytes (from /dev/shm) with \`oflag=direct bs=1M
conv=fdatasync\` (mram convert also ends with fdatasync); a 30-line C writer (\`lib/layout-writer.js\`) writes the
same bytes the same way but at their mapped-ram slots, holes between runs — the hardware limit for
this file layout; QEMU saves the same guest with mapped-ram
(1 channel; multifd 2; multifd 2 + direct-io; no bandwidth cap). Reads start from a cold file
(\`dd iflag=nocache count=0\` evicts each input first); dd reads the ${fmt(N / 2 ** 30)} GiB it wrote, and
sha256sum hashes the sparse raw image \`mram extract\` wrote. mram and its peers swap order from run to
run (writes; QEMU loads), since the disk's speed drifts.

**GB/s** is always the same N = ${N} bytes of page data divided by wall seconds, so bars compare
directly. mram, dd and sha256sum times are whole processes (spawn → exit, node start-up included);
QEMU times run from \`migrate\`/\`migrate-incoming\` to completion over QMP (QEMU start-up excluded).
Ratios are taken pair by pair within each run (time of the reference / time of the row: > 1 means
the row is faster), then median (min–max) over ${r.config.runs} runs. Page cache: \`fincore\` of the output
right after the write (% of the bytes the output allocates) and the growth of \`Cached\` in
/proc/meminfo (machine-wide, other jobs included; it can be negative when the write evicts other
files). RSS: peak resident set (wait4 rusage via GNU time).

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

${FINDINGS}
`;
}
