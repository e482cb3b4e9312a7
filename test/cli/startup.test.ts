// What a command loads before it works: bin/mram.js runs one bundled file (dist/cli/mram.cjs), and
// Node built-ins that only some paths need (child_process, crypto, zlib) are loaded when first used.
// Both are start-up time of every command (bench/FINDINGS.md, "Start-up").
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/fixtures.js';
import { buildCli } from '../convert/support.js';
import { tempDir } from '../verify/support.js';

const SAMPLE = path.join(REPO_ROOT, 'samples/guest-8m.mig');
const dir = tempDir('mram-startup-');
const probe = path.join(dir, 'probe.cjs');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  buildCli();
  // Preloaded: at exit, the lazily loaded built-ins present and every CommonJS file loaded.
  fs.writeFileSync(
    probe,
    "process.on('exit', () => require('fs').writeSync(2, '\\nPROBE ' + JSON.stringify({ builtins: process.moduleLoadList.filter((m) => /^NativeModule (child_process|crypto|zlib)$/.test(m)).map((m) => m.slice(13)), files: Object.keys(require.cache) }) + '\\n'));\n",
  );
});

function loaded(args: string[]): { code: number | null; builtins: string[]; files: string[] } {
  const r = spawnSync(process.execPath, ['--require', probe, path.join(REPO_ROOT, 'bin/mram.js'), ...args], { encoding: 'utf8' });
  const line = r.stderr.split('\n').find((l) => l.startsWith('PROBE '));
  if (!line) throw new Error(`no probe line: ${r.stderr}`);
  const { builtins, files } = JSON.parse(line.slice(6)) as { builtins: string[]; files: string[] };
  return { code: r.status, builtins, files: files.filter((f) => f.startsWith(REPO_ROOT)).map((f) => path.relative(REPO_ROOT, f)) };
}

describe('start-up', () => {
  it('bin/mram.js loads the CLI as one bundled file', () => {
    const r = loaded(['inspect', SAMPLE]);
    expect(r.code).toBe(0);
    expect(r.files.filter((f) => f.endsWith('.js') || f.endsWith('.cjs'))).toEqual(['bin/mram.js', 'dist/cli/mram.cjs']);
  });

  it('a plain verify loads neither child_process, crypto nor zlib; --digest loads crypto when it hashes', () => {
    const plain = loaded(['verify', SAMPLE]);
    expect(plain.code).toBe(0);
    expect(plain.builtins).toEqual([]);
    const digest = loaded(['verify', '--digest', SAMPLE]);
    expect(digest.code).toBe(0);
    expect(digest.builtins).toEqual(['crypto']);
  });
});
