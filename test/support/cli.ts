// Runs mram commands in-process with captured output, or as the real `bin/mram.js` subprocess.
import { spawn, spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { main } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/io.js';
import { REPO_ROOT } from './fixtures.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

export async function runCli(args: string[]): Promise<CliResult> {
  const out = sink();
  const err = sink();
  const io: CliIO = { stdout: out.stream, stderr: err.stream, stdin: new PassThrough() };
  const code = await main(args, io);
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out.text(), stderr: err.text() };
}

/** The installed entry point (needs `npm run build`). */
export function runBin(args: string[], opts: { input?: Buffer } = {}): CliResult {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/mram.js'), ...args], { input: opts.input, maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

/** runBin without blocking the test worker (long runs would stall vitest's RPC): the same result, as a promise. */
export function runBinAsync(args: string[], opts: { input?: Buffer } = {}): Promise<CliResult> {
  return runProcess(process.execPath, [path.join(REPO_ROOT, 'bin/mram.js'), ...args], opts);
}

/** Any command, asynchronously, with its output as text. */
export function runProcess(cmd: string, args: string[], opts: { input?: Buffer | string; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c: Buffer) => err.push(c));
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}
