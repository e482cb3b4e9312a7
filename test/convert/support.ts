// Shared helpers of the convert suites: the built CLI, waiting for exec: outputs, RAM comparison.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { REPO_ROOT } from '../support/fixtures.js';
import { currentGeneration, makeTempDir } from '../support/qemu.js';

export const CLI = path.join(REPO_ROOT, 'bin/mram.js');

let built = false;
/** Compiles src → dist and bundles the CLI once per worker (bin/mram.js runs dist/cli/mram.cjs). */
export function buildCli(): void {
  if (built || distIsFresh()) return;
  // Type errors elsewhere in the tree must not block emitting the CLI; the check is that it exists.
  spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO_ROOT, stdio: 'ignore' });
  spawnSync(process.execPath, ['scripts/bundle-cli.mjs'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (!distIsFresh()) throw new Error('npm run build:ts && npm run build:cli did not produce a fresh dist/cli/mram.cjs');
  built = true;
}

export function runCli(args: string[], input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('node', [CLI, ...args], { input, maxBuffer: 1 << 30 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** Waits until `file` exists (an exec: converter renames its output after QEMU is done). */
export async function waitForFile(file: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** First differing page, or -1 (a readable failure instead of a 32 MiB buffer diff). */
export function firstDifferentPage(a: Uint8Array, b: Uint8Array, pageSize = 4096): number {
  if (a.length !== b.length) return -2;
  for (let p = 0; p < a.length; p += pageSize) {
    if (Buffer.compare(a.subarray(p, p + pageSize), b.subarray(p, p + pageSize)) !== 0) return p / pageSize;
  }
  return -1;
}

/** The CLI bundle newer than every source file: no rebuild needed. */
function distIsFresh(): boolean {
  const bundle = path.join(REPO_ROOT, 'dist/cli/mram.cjs');
  if (!fs.existsSync(bundle)) return false;
  const built = fs.statSync(bundle).mtimeMs;
  const newest = (d: string): number =>
    fs.readdirSync(d, { withFileTypes: true }).reduce((m, e) => {
      const p = path.join(d, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
    }, 0);
  return newest(path.join(REPO_ROOT, 'src')) < built;
}

/**
 * Builds the CLI once for the suite and gives it a scratch directory, removed afterwards: one
 * subdirectory per QEMU generation, so a describeQemu suite's runs do not meet each other's outputs.
 */
export function convertSuite(): () => string {
  let dir = '';
  beforeAll(() => {
    buildCli();
    dir = makeTempDir('mram-convert-');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return () => {
    const sub = path.join(dir, `qemu${currentGeneration().key}`);
    fs.mkdirSync(sub, { recursive: true });
    return sub;
  };
}
