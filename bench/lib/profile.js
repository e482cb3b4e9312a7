// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per source file,
// and the (idle) / (garbage collector) / (program) shares of the main thread.
import fs from 'node:fs';
import path from 'node:path';

export function summariseProfile(file, root, top = 12) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0; // sample i lasts until sample i+1
    total += dt;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
  }
  const fns = new Map();
  const files = new Map();
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    let url = cf.url.replace(/^file:\/\//, '');
    if (url.startsWith(root)) url = path.relative(root, url);
    const name = cf.functionName || '(anonymous)';
    const key = url ? `${name} ${url}:${cf.lineNumber + 1}` : name;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const fk = url ? (url.startsWith('node:') ? 'node internals' : url) : name;
    files.set(fk, (files.get(fk) ?? 0) + us);
  }
  const rank = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({ name: k, ms: +(us / 1000).toFixed(1), pct: +((100 * us) / total).toFixed(1) }));
  return { totalMs: +(total / 1000).toFixed(1), functions: rank(fns), files: rank(files) };
}
