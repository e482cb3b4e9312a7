// vitest globalSetup: (re)build the debug kernel (build/mram.debug.wasm, `npm run build:wasm:debug`)
// when it is missing or older than a kernel source, before any test instantiates it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default function setup(): void {
  const wasm = path.join(root, 'build/mram.debug.wasm');
  const built = fs.existsSync(wasm) ? fs.statSync(wasm).mtimeMs : 0;
  const sources = ['asconfig.json', 'asconfig.bench.json', ...fs.readdirSync(path.join(root, 'assembly')).map((f) => `assembly/${f}`)];
  if (sources.every((f) => fs.statSync(path.join(root, f)).mtimeMs < built)) return;
  execFileSync('npm', ['run', '--silent', 'build:wasm:debug'], { cwd: root, stdio: 'inherit' });
}
