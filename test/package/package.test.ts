// The package as a consumer meets it: license, metadata, how it loads (import and require), what
// the tarball ships, and the README's examples run for real.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/fixtures.js';
import { runBinAsync, runProcess } from '../support/cli.js';
import setupTmpGuard from '../support/tmp-guard.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

/** A consumer project whose node_modules/mram is this checkout. */
const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-consumer-'));
fs.mkdirSync(path.join(consumer, 'node_modules'));
fs.symlinkSync(REPO_ROOT, path.join(consumer, 'node_modules/mram'));
afterAll(() => fs.rmSync(consumer, { recursive: true, force: true }));

const node = (args: string[]) => runProcess(process.execPath, args, { cwd: consumer });

describe('package metadata', () => {
  it('ships an MIT LICENSE matching package.json', () => {
    expect(pkg.license).toBe('MIT');
    const license = fs.readFileSync(path.join(REPO_ROOT, 'LICENSE'), 'utf8');
    expect(license.split('\n')[0]).toBe('MIT License');
    expect(license).toContain('Permission is hereby granted, free of charge');
    expect(pkg.files).toContain('LICENSE');
  });

  it('has keywords, and names no package-mirror host', () => {
    expect(Array.isArray(pkg.keywords) && (pkg.keywords as string[]).includes('qemu')).toBe(true);
    // repository/bugs are left out until the project has a public URL (a guessed one would mislead).
    for (const field of ['repository', 'bugs', 'homepage']) {
      const v = JSON.stringify(pkg[field] ?? '');
      expect(v).not.toMatch(/registry|mirror|npmmirror|proxy/i);
    }
  });
});

describe('loading the package', () => {
  it('import works', async () => {
    const r = await node(['--input-type=module', '-e', "const m = await import('mram'); console.log(typeof m.MigrationFile, typeof m.MappedRamWriter)"]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function function\n');
  });

  it('require works where Node can require ES modules', async () => {
    const r = await node(['-e', "const m = require('mram'); console.log(typeof m.MigrationFile)"]);
    const major = Number(process.versions.node.split('.')[0]);
    const minor = Number(process.versions.node.split('.')[1]);
    if (major > 22 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19)) {
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('function\n');
    } else {
      expect(r.stderr).toContain('mram is an ES module');
    }
  });

  it('where require() of ES modules is off, require fails with one clear line (not ERR_PACKAGE_PATH_NOT_EXPORTED)', async () => {
    const r = await node(['--no-experimental-require-module', '-e', "try { require('mram') } catch (e) { console.log(e.code + ': ' + e.message) }"]);
    // Node versions without the flag reject it; then there is nothing to check here.
    if (/bad option/.test(r.stderr)) return;
    expect(r.stdout).toMatch(/^ERR_REQUIRE_ESM: mram is an ES module: load it with `import \{ MigrationFile \} from 'mram'`/);
    expect(r.stdout).not.toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});

describe('the API reference', () => {
  // typedoc fails on an export without a JSDoc comment, or a public signature naming an unexported type.
  it('npm run docs builds it with no warning (every export documented)', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-docs-'));
    try {
      const r = await runProcess(path.join(REPO_ROOT, 'node_modules/.bin/typedoc'), ['--out', out], { cwd: REPO_ROOT });
      expect(r.stdout + r.stderr).not.toMatch(/warning|error/i);
      expect(r.code).toBe(0);
      expect(fs.existsSync(path.join(out, 'index.html'))).toBe(true);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('the tarball', () => {
  it('ships no source map that points at files it does not ship', async () => {
    const r = await runProcess('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT });
    expect(r.code, r.stderr).toBe(0);
    const files = new Set((JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
    expect(files.has('LICENSE')).toBe(true);
    expect(files.has('dist/index.js')).toBe(true);
    expect(files.has('dist/require.cjs')).toBe(true);
    expect(files.has('build/mram.wasm')).toBe(true);
    const dangling: string[] = [];
    for (const f of files) {
      if (!f.endsWith('.map')) continue;
      const map = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, f), 'utf8')) as { sources: string[] };
      for (const s of map.sources) if (!files.has(path.normalize(path.join(path.dirname(f), s)))) dangling.push(`${f} -> ${s}`);
    }
    expect(dangling).toEqual([]);
  });
});

describe('the README', () => {
  it("the sample inspect output is the real output (allocation within 5%: it depends on the checkout's file system)", async () => {
    const m = /```\n\$ node bin\/mram\.js inspect samples\/guest-8m\.mig\n([\s\S]*?)```/.exec(readme);
    expect(m, 'README block with the sample output').not.toBeNull();
    const r = await runBinAsync(['inspect', 'samples/guest-8m.mig']);
    expect(r.code).toBe(0);
    const allocated = /, ([\d.]+ [KMG]iB) allocated\)/;
    const kib = (s: string) => {
      const [n, u] = allocated.exec(s)![1]!.split(' ') as [string, string];
      return Number(n) * { KiB: 1, MiB: 1024, GiB: 1024 ** 2 }[u]!;
    };
    expect(m![1]!.replace(allocated, ', X allocated)')).toBe(r.stdout.replace(allocated, ', X allocated)'));
    expect(Math.abs(kib(m![1]!) - kib(r.stdout)) / kib(r.stdout)).toBeLessThan(0.05);
  });

  it('the library example that writes a file runs, and verify rates the file clean (exit 0)', async () => {
    const m = /```js\n(import \{ MappedRamWriter \} from 'mram';[\s\S]*?)```/.exec(readme);
    expect(m, 'README writer example').not.toBeNull();
    fs.writeFileSync(path.join(consumer, 'example.mjs'), m![1]!);
    const r = await node(['example.mjs']);
    expect(r.code, r.stderr).toBe(0);
    const v = await runBinAsync(['verify', path.join(consumer, 'vm.mram')]);
    expect(v.stdout).toMatch(/no errors were found/);
    expect(v.code).toBe(0);
  });
});

describe('TMPDIR guard (vitest globalSetup)', () => {
  it('fails the run when a test leaves something in TMPDIR, and removes it', () => {
    const saved = process.env.TMPDIR;
    try {
      const teardown = setupTmpGuard();
      const base = process.env.TMPDIR!;
      expect(path.dirname(base)).toBe(saved ? path.resolve(saved) : os.tmpdir());
      fs.mkdirSync(path.join(base, 'mram-leftover-x'));
      expect(teardown).toThrow(/left 1 entry in TMPDIR: mram-leftover-x/);
      expect(fs.existsSync(base)).toBe(false);
      expect(process.env.TMPDIR).toBe(saved);
      const clean = setupTmpGuard();
      expect(clean).not.toThrow();
    } finally {
      process.env.TMPDIR = saved;
    }
  });
});
