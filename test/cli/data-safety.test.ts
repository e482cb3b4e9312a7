// Nothing lost, nothing left behind: real processes of bin/mram.js, real signals, real pipes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MappedRamWriter } from '../../src/writer/mapped-ram-writer.js';
import { buildCli, CLI } from '../convert/support.js';
import { getFixture, REPO_ROOT } from '../support/fixtures.js';
import { tempDir } from '../verify/support.js';

const dir = tempDir('mram-safety-');
let stream = '';
let mapped = '';
let big = '';
beforeAll(async () => {
  buildCli();
  stream = (await getFixture('stream-32m')).file;
  mapped = (await getFixture('mr-32m')).file;
  // 8 GiB block, one page in 16384 present: extract spends seconds reading the page area's holes.
  big = path.join(dir, 'big.mram');
  const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: null, uuid: null, subsectionOrder: [] };
  const w = await MappedRamWriter.create(big, { configuration: config, blocks: [{ id: 'mem', usedLength: 8 * 2 ** 30 }], directIo: 'off' });
  for (let p = 0; p < 2 ** 21; p += 16384) await w.writePages('mem', p, new Uint8Array(4096).fill(7));
  await w.finish();
}, 120_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const mram = (args: string[], opts: { cwd?: string } = {}) => spawnSync(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? dir, maxBuffer: 1 << 28 });
const leftovers = (d: string) => fs.readdirSync(d).filter((f) => f.includes('mram-tmp'));

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

async function waitFor(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** 128 + signal number, as a shell reports a process ended by the signal. */
function shellStatus(signal: NodeJS.Signals, cmd: string): number {
  const r = spawnSync('bash', ['-c', `set -m; ${cmd} & pid=$!; while [ -z "$(ls -A ${dir}/sig 2>/dev/null | grep mram-tmp)" ]; do sleep 0.02; done; kill -${signal.slice(3)} $pid; wait $pid; echo $?`]);
  return Number(r.stdout.toString().trim());
}

describe('interrupted commands leave nothing behind', () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`convert - OUT (a pipe that stalls mid-stream) on ${signal}: temporary file removed, ended by the signal`, async () => {
      const out = path.join(dir, `pipe-${signal}.mram`);
      const child = spawn(process.execPath, [CLI, 'convert', '-', out], { stdio: ['pipe', 'ignore', 'pipe'] });
      const done = exited(child);
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      // The child dies with unread input: our end of the pipe gets EPIPE.
      child.stdin!.on('error', () => undefined);
      // Header, configuration and the first RAM records: the output is being written, the input stalls.
      child.stdin!.write(fs.readFileSync(stream).subarray(0, 256 << 10));
      const temp = path.join(dir, `.${path.basename(out)}.mram-tmp-${child.pid}`);
      await waitFor(() => fs.existsSync(temp), 'the temporary file');
      child.kill(signal);
      const r = await done;
      child.stdin!.destroy();
      expect(r.signal).toBe(signal);
      expect(fs.existsSync(temp)).toBe(false);
      expect(fs.existsSync(out)).toBe(false);
      expect(stderr).toBe('');
    });

    it(`extract of an 8 GiB block on ${signal}: temporary image removed, ended by the signal`, async () => {
      const out = path.join(dir, `x-${signal}.ram`);
      const child = spawn(process.execPath, [CLI, 'extract', big, '--block', 'mem', '-o', out], { stdio: 'ignore' });
      const done = exited(child);
      const temp = path.join(dir, `.${path.basename(out)}.mram-tmp-${child.pid}`);
      await waitFor(() => fs.existsSync(temp), 'the temporary image');
      child.kill(signal);
      const r = await done;
      expect(r.signal).toBe(signal);
      expect(fs.existsSync(temp)).toBe(false);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  it('a shell sees 130, 143 and 129 (128 + the signal), and nothing is left', () => {
    const sigDir = path.join(dir, 'sig');
    fs.mkdirSync(sigDir, { recursive: true });
    for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
      const cmd = `${process.execPath} ${CLI} extract ${big} --block mem -o ${sigDir}/x.ram`;
      expect(shellStatus(signal, cmd)).toBe(status);
      expect(fs.readdirSync(sigDir)).toEqual([]);
    }
  });

  it('the library writer removes its temporary file on SIGTERM', async () => {
    const out = path.join(dir, 'lib.mram');
    const script = `
      const { MappedRamWriter } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist/writer/mapped-ram-writer.js'))});
      const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: null, uuid: null, subsectionOrder: [] };
      const w = await MappedRamWriter.create(${JSON.stringify(out)}, { configuration: config, blocks: [{ id: 'mem', usedLength: 1 << 30 }] });
      await w.writePages('mem', 0, new Uint8Array(1 << 20).fill(1));
      console.log('ready');
      setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const done = exited(child);
    await new Promise<void>((resolve) => child.stdout!.on('data', (d) => String(d).includes('ready') && resolve()));
    expect(leftovers(dir).some((f) => f.startsWith('.lib.mram'))).toBe(true);
    child.kill('SIGTERM');
    expect((await done).signal).toBe('SIGTERM');
    expect(leftovers(dir).filter((f) => f.startsWith('.lib.mram'))).toEqual([]);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('the input is never the output', () => {
  it('convert X X, X ./X and a hard link of X as OUT: exit 64, X untouched; same for extract', () => {
    const x = path.join(dir, 'same.mig');
    fs.copyFileSync(stream, x);
    fs.linkSync(x, path.join(dir, 'same-link.mig'));
    const before = fs.readFileSync(x);
    for (const args of [
      ['convert', 'same.mig', 'same.mig', '--force'],
      ['convert', 'same.mig', './same.mig', '--force'],
      ['convert', 'same.mig', `${dir}/same.mig`, '--force'],
      ['convert', 'same.mig', 'same-link.mig', '--force'],
      ['extract', 'same.mig', '--block', 'mem', '-o', 'same-link.mig', '--force'],
    ]) {
      const r = mram(args);
      expect(r.status, args.join(' ')).toBe(64);
      expect(r.stderr.toString()).toMatch(/is the input file/);
    }
    expect(fs.readFileSync(x).equals(before)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'same-link.mig')).equals(before)).toBe(true);
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('outputs are never replaced without --force', () => {
  it('two concurrent converts to one OUT: exactly one succeeds, every round', async () => {
    for (let round = 0; round < 8; round++) {
      const out = path.join(dir, `race-${round}.mram`);
      const runs = [0, 1].map(() => {
        const child = spawn(process.execPath, [CLI, 'convert', stream, out], { stdio: 'ignore' });
        return exited(child);
      });
      const codes = (await Promise.all(runs)).map((r) => r.code);
      expect(codes.sort()).toEqual([0, 64]);
    }
    expect(leftovers(dir)).toEqual([]);
  });

  it('a dangling symlink as OUT exists for convert, extract and extract --all; --force replaces the link, not its target', () => {
    const link = path.join(dir, 'dangling.mram');
    const target = path.join(dir, 'nowhere');
    fs.symlinkSync(target, link);
    const all = path.join(dir, 'all');
    fs.mkdirSync(all);
    fs.symlinkSync(target, path.join(all, 'mem.ram'));
    for (const args of [
      ['convert', stream, link],
      ['extract', stream, '--block', 'mem', '-o', link],
      ['extract', stream, '--all', all],
    ]) {
      const r = mram(args);
      expect(r.status, args.join(' ')).toBe(64);
      expect(r.stderr.toString()).toMatch(/exists \(use --force/);
    }
    expect(mram(['convert', stream, link, '--force']).status).toBe(0);
    expect(fs.lstatSync(link).isFile()).toBe(true);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('a missing OUT directory is named in the error, the input is not blamed', () => {
    for (const args of [
      ['convert', stream, path.join(dir, 'missing/x.mram')],
      ['extract', stream, '--block', 'mem', '-o', path.join(dir, 'missing/x.ram')],
    ]) {
      const r = mram(args);
      const err = r.stderr.toString();
      expect(r.status).toBe(1);
      expect(err).toMatch(/cannot create .*missing\/x\.\w+: directory .*missing does not exist/);
      expect(err).not.toContain('mram-tmp');
      expect(err).not.toContain(`${stream}:`);
      expect(err.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('stdout that goes away or fills up', () => {
  const bash = (cmd: string) => spawnSync('bash', ['-c', cmd], { cwd: dir });

  it('extract/convert/inspect/verify into a pipe closed early: no message, status 141 (as cat)', () => {
    for (const cmd of [`extract ${mapped} --block mem -o -`, `convert ${mapped} -`, `inspect ${mapped} --devices`, `verify --json ${mapped}`]) {
      const r = bash(`${process.execPath} ${CLI} ${cmd} 2>err.txt | head -c 100 >/dev/null; echo \${PIPESTATUS[0]}`);
      const status = Number(r.stdout.toString().trim());
      const err = fs.readFileSync(path.join(dir, 'err.txt'), 'utf8');
      expect(err, cmd).toBe('');
      // Short outputs may fit the pipe before head exits: then 0 (or verify's 0/3) is right too.
      if (cmd.startsWith('extract') || cmd.startsWith('convert')) expect(status, cmd).toBe(141);
    }
  });

  it('stdout on /dev/full (ENOSPC): one line, exit 1, no stack trace', () => {
    for (const cmd of [`extract ${mapped} --block mem -o -`, `convert ${mapped} -`, `inspect ${mapped}`, `verify ${mapped}`, `verify --json ${mapped}`]) {
      const r = bash(`${process.execPath} ${CLI} ${cmd} >/dev/full`);
      const err = r.stderr.toString();
      expect(r.status, cmd).toBe(1);
      expect(err.trim().split('\n'), cmd).toHaveLength(1);
      expect(err, cmd).toMatch(/^mram \w+: writing standard output: ENOSPC/);
    }
  });
});
