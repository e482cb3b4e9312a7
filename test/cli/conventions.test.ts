// The command line's shared conventions, through the real entry point (bin/mram.js, built) and, where
// behaviour depends on a terminal, through a real pseudo-terminal (script(1)).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/fixtures.js';
import { runBinAsync as runBin, runProcess } from '../support/cli.js';
import { tempDir } from '../verify/support.js';

const SAMPLE = path.join(REPO_ROOT, 'samples/guest-8m.mig');
const MRAM = path.join(REPO_ROOT, 'bin/mram.js');
const COMMANDS = ['inspect', 'verify', 'convert', 'extract'];
const dir = tempDir('mram-cli-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A usage error: exactly the message line and the pointer to --help, exit 64, nothing on stdout. */
function expectUsageError(r: { code: number; stdout: string; stderr: string }, command: string, message: RegExp): void {
  expect(r.code, r.stderr).toBe(64);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n');
  expect(lines).toHaveLength(3);
  expect(lines[0]).toMatch(new RegExp(`^mram ${command}: `));
  expect(lines[0]).toMatch(message);
  expect(lines[1]).toBe(`Try 'mram ${command} --help' for more information.`);
  expect(r.stderr).not.toContain('\\n');
  expect(r.stderr).not.toContain('usage:');
}

/** Runs `sh -c CMD` with stdin, stdout and stderr on a pseudo-terminal; returns what the terminal saw. */
async function onTty(cmd: string): Promise<{ code: number; tty: string }> {
  const r = await runProcess('script', ['-qec', cmd, '/dev/null']);
  return { code: r.code, tty: r.stdout };
}

describe('usage errors: one line and a pointer to --help, never the whole help or a literal \\n', () => {
  const cases: Array<[string[], string, RegExp]> = [
    [['convert'], 'convert', /missing IN and OUT/],
    [['convert', 'a'], 'convert', /missing OUT/],
    [['convert', 'a', 'b', 'c'], 'convert', /unexpected argument "c"/],
    [['convert', 'a', 'b', '--offset', '-5'], 'convert', /--offset needs a value/],
    [['convert', 'a', 'b', '--offset=-5'], 'convert', /--offset: expected a byte count/],
    [['convert', 'a', 'b', '--to', 'qcow2'], 'convert', /--to: expected mapped-ram or stream/],
    [['inspect'], 'inspect', /missing FILE/],
    [['inspect', 'a', 'b'], 'inspect', /unexpected argument "b"/],
    [['verify', '--bogus', 'x'], 'verify', /Unknown option '--bogus'/],
    [['verify', 'x', '--offset', 'many'], 'verify', /--offset: expected a byte count/],
    [['extract'], 'extract', /missing FILE/],
    [['extract', 'x', '--frobnicate'], 'extract', /Unknown option '--frobnicate'/],
    [['extract', 'x', '--block', 'mem'], 'extract', /--block needs -o OUT/],
    [['extract', 'x'], 'extract', /give either --block ID -o OUT or --all DIR/],
    [['extract', 'x', '--block', 'mem', '-o'], 'extract', /--output needs a value/],
  ];
  for (const [args, command, message] of cases) {
    it(args.join(' '), async () => expectUsageError(await runBin(args), command, message));
  }

  it('extract -o DIR says once that OUT is a directory (with or without --force), and DIR is untouched', async () => {
    const out = path.join(dir, 'a-directory');
    fs.mkdirSync(out, { recursive: true });
    for (const force of [[], ['--force'], ['-f']]) {
      expectUsageError(await runBin(['extract', SAMPLE, '--block', 'mem', '-o', out, ...force]), 'extract', /-o .*a-directory is a directory/);
    }
    expect(fs.readdirSync(out)).toEqual([]);
  });
});

describe('help and version', () => {
  it('`mram help CMD` prints the same as `mram CMD --help`, on stdout, exit 0', async () => {
    for (const c of COMMANDS) {
      const a = await runBin(['help', c]);
      const b = await runBin([c, '--help']);
      expect(a.code).toBe(0);
      expect(a.stdout).toBe(b.stdout);
      expect(a.stdout).toMatch(new RegExp(`^usage: mram ${c} `));
      expect((await runBin([c, '-h'])).stdout).toBe(a.stdout);
    }
  });

  it('--version prints the version of package.json, and the top-level help names it', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runBin(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`mram ${pkg.version}\n`);
    const help = (await runBin(['--help'])).stdout;
    expect(help).toContain('mram --version');
    expect(help).toContain('mram help <command>');
    for (const c of COMMANDS) expect(help).toContain(`  ${c} `);
  });

  it('every flag a command accepts appears in its help: -f/--force, -o/--output, --json, -q/--quiet', async () => {
    const help: Record<string, string> = {};
    for (const c of COMMANDS) help[c] = (await runBin([c, '--help'])).stdout;
    for (const c of COMMANDS) {
      expect(help[c]).toMatch(/^ {2}-q, --quiet\s/m);
      expect(help[c]).toMatch(/^ {6}--json\s/m);
      expect(help[c]).toMatch(/^ {2}-h, --help\s/m);
    }
    expect(help.convert).toMatch(/^ {2}-f, --force\s/m);
    expect(help.extract).toMatch(/^ {2}-f, --force\s/m);
    expect(help.extract).toMatch(/^ {2}-o, --output OUT\s/m);
    // ... and what the help shows is accepted.
    const out = path.join(dir, 'help-flags.ram');
    expect((await runBin(['extract', SAMPLE, '--block', 'mem', '--output', out, '-q'])).code).toBe(0);
    expect((await runBin(['extract', SAMPLE, '--block', 'mem', '-o', out, '-f', '--quiet'])).code).toBe(0);
  });
});

describe('stdin: convert streams it; inspect, verify and extract say they need a file', () => {
  for (const args of [['inspect', '-'], ['verify', '-'], ['extract', '-', '--block', 'mem', '-o', 'x.ram']]) {
    it(args.join(' '), async () => {
      const r = await runBin(args, { input: fs.readFileSync(SAMPLE) });
      expectUsageError(r, args[0]!, /reading standard input is not supported: \w+ needs a file/);
      expect(r.stderr).not.toContain('ENOENT');
    });
  }

  it('convert - OUT reads a plain stream from stdin', async () => {
    const stream = path.join(dir, 'stdin-src.mig');
    expect((await runBin(['convert', SAMPLE, stream, '--to', 'stream'])).code).toBe(0);
    const out = path.join(dir, 'from-stdin.mram');
    const r = await runBin(['convert', '-', out], { input: fs.readFileSync(stream) });
    expect(r.code, r.stderr).toBe(0);
    expect((await runBin(['verify', out])).code).toBe(0);
  });
});

describe('binary output never goes to a terminal', () => {
  it('convert X - refuses when stdout is a TTY (exit 64) and writes nothing there', async () => {
    const err = path.join(dir, 'tty-convert.err');
    const r = await onTty(`node ${MRAM} convert ${SAMPLE} - --to stream 2>${err}`);
    expect(r.code).toBe(64);
    expect(r.tty).not.toContain('QEVM');
    expect(fs.readFileSync(err, 'utf8')).toMatch(/^mram convert: refusing to write a migration stream to a terminal/);
  });

  it('extract -o - refuses when stdout is a TTY', async () => {
    const err = path.join(dir, 'tty-extract.err');
    const r = await onTty(`node ${MRAM} extract ${SAMPLE} --block mem -o - 2>${err}`);
    expect(r.code).toBe(64);
    expect(fs.readFileSync(err, 'utf8')).toMatch(/^mram extract: refusing to write a RAM image to a terminal/);
  });

  it('convert X - into a pipe still works', async () => {
    const r = await runBin(['convert', SAMPLE, '-', '--to', 'stream']);
    expect(r.code).toBe(0);
    expect(r.stdout.slice(0, 4)).toBe('QEVM');
  });
});

describe('progress: one style on a TTY for convert, verify and extract; -q silences it; nothing off a TTY', () => {
  const runs: Array<[string, (out: string) => string[]]> = [
    ['convert', (out) => ['convert', SAMPLE, `${out}.mig`, '--to', 'stream']],
    ['verify', () => ['verify', SAMPLE]],
    ['extract', (out) => ['extract', SAMPLE, '--block', 'mem', '-o', `${out}.ram`]],
  ];
  for (const [name, args] of runs) {
    it(name, async () => {
      const out = path.join(dir, `progress-${name}`);
      // stdout to a file: what reaches the terminal is stderr alone.
      const tty = await onTty(`node ${MRAM} ${args(out).join(' ')} >${out}.stdout`);
      expect(tty.code, tty.tty).toBe(0);
      // The first update is always drawn: "\r<command>: NN% of SIZE, RATE/s[, ETA N s]", erased at the end.
      expect(tty.tty).toMatch(new RegExp(`\\r${name}: \\d+% of [\\d.]+ [KMG]iB, [\\d.]+ (B|[KMG]iB)/s`));
      expect(tty.tty).toContain('\r\x1b[K');
      if (name !== 'verify') expect(tty.tty).toMatch(new RegExp(`${name}: .* in [\\d.]+ s\\r?\\n`));
      fs.rmSync(`${out}.mig`, { force: true });
      fs.rmSync(`${out}.ram`, { force: true });
      const quiet = await onTty(`node ${MRAM} ${args(out).join(' ')} -q >${out}.stdout`);
      expect(quiet.code).toBe(0);
      expect(quiet.tty).toBe('');
      fs.rmSync(`${out}.mig`, { force: true });
      fs.rmSync(`${out}.ram`, { force: true });
      const piped = await runBin(args(out));
      expect(piped.code).toBe(0);
      expect(piped.stderr).toBe('');
    });
  }
});

describe('verify of a file that cannot be opened', () => {
  it('names the open error without an offset (text and JSON)', async () => {
    const missing = path.join(dir, 'no-such-file.mig');
    const r = await runBin(['verify', missing]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^error +E_OPEN: ENOENT: no such file or directory/m);
    expect(r.stdout).not.toMatch(/E_OPEN at/);
    const j = JSON.parse((await runBin(['verify', missing, '--json'])).stdout) as { errors: Array<{ code: string; offset: number | null }> };
    expect(j.errors[0]).toMatchObject({ code: 'E_OPEN', offset: null });
  });
});

describe('--json on every command', () => {
  it('inspect, verify, convert and extract print one JSON document on stdout', async () => {
    const i = JSON.parse((await runBin(['inspect', SAMPLE, '--json'])).stdout) as { format: string };
    expect(i.format).toBe('mapped-ram');
    const v = JSON.parse((await runBin(['verify', SAMPLE, '--json'])).stdout) as { ok: boolean; exitCode: number };
    expect(v).toMatchObject({ ok: true, exitCode: 0 });
    const out = path.join(dir, 'json.mig');
    const c = await runBin(['convert', SAMPLE, out, '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toEqual({ input: SAMPLE, output: out, from: 'mapped-ram', to: 'stream', bytes: fs.statSync(out).size, direct: null });
    const all = path.join(dir, 'json-all');
    const e = await runBin(['extract', SAMPLE, '--all', all, '--json']);
    expect(e.code, e.stderr).toBe(0);
    const images = (JSON.parse(e.stdout) as { images: Array<{ block: string; path: string; length: number }> }).images;
    expect(images.map((x) => x.block)).toContain('mem');
    for (const x of images) expect(fs.statSync(x.path).size).toBe(x.length);
  });

  it('--json is refused where stdout carries the data', async () => {
    expectUsageError(await runBin(['convert', SAMPLE, '-', '--to', 'stream', '--json']), 'convert', /--json needs OUT to be a file/);
    expectUsageError(await runBin(['extract', SAMPLE, '--block', 'mem', '-o', '-', '--json']), 'extract', /--json needs -o to name a file/);
  });
});
