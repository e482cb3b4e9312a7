// What every command gets: where to write, and how failures become one line and an exit code.
import { FormatError, UsageError } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';

/** The streams a command uses (process.std* or a test's). */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** The process's own stdout, stderr and stdin, each made when first used (stdin's costs a command that reads none). */
export const processIO: CliIO = {
  get stdout() {
    return process.stdout;
  },
  get stderr() {
    return process.stderr;
  },
  get stdin() {
    return process.stdin;
  },
};

/** Exit codes shared by all commands (verify adds 2 and 3 for findings). */
export const EXIT_OK = 0;
/** The input could not be read or is not a migration file, or a write failed. */
export const EXIT_FAILURE = 1;
/** Usage error (bad options, refusals), as sysexits EX_USAGE. */
export const EXIT_USAGE = 64;
/** The reader of stdout went away (EPIPE): 128 + SIGPIPE, what `cat` ends with in a shell. */
export const EXIT_PIPE = 141;

/** A subcommand: arguments in, exit status out. */
export type Command = (args: string[], io: CliIO) => Promise<number>;

/** Turns an error into a single line on stderr; never a stack trace for expected failures. */
export function reportError(io: CliIO, command: string, e: unknown, file?: string): number {
  const where = file ? `${escapeControl(file)}: ` : '';
  if (e instanceof UsageError) {
    io.stderr.write(`mram ${command}: ${escapeControl(e.message)}\n`);
    return EXIT_USAGE;
  }
  if (e instanceof FormatError) {
    io.stderr.write(`mram ${command}: ${where}${escapeControl(e.message)}\n`);
    return EXIT_FAILURE;
  }
  const err = e as NodeJS.ErrnoException;
  // A closed pipe on stdout (`| head`) is the reader's choice, not a failure to report.
  if (err?.code === 'EPIPE') return EXIT_PIPE;
  if (err && typeof err.code === 'string' && typeof err.message === 'string') {
    io.stderr.write(`mram ${command}: ${where}${escapeControl(err.message)}\n`);
    return EXIT_FAILURE;
  }
  io.stderr.write(`mram ${command}: internal error: ${escapeControl(String((e as Error)?.stack ?? e))}\n`);
  return EXIT_FAILURE;
}

/**
 * Runs a command, watching its stdout: a write error there (EPIPE: ends quietly with EXIT_PIPE;
 * ENOSPC, EIO...: one line, exit 1) is the command's outcome, never an unhandled 'error' event.
 */
export async function watchStdout(io: CliIO, command: string, run: () => Promise<number>): Promise<number> {
  let failure: NodeJS.ErrnoException | null = null;
  // Stays attached: a late error event must not become an uncaught exception.
  io.stdout.on('error', (e: NodeJS.ErrnoException) => {
    failure ??= e;
  });
  const code = await run();
  // Writes already handed to stdout fail (if they do) before this callback runs.
  if (!failure) await new Promise<void>((resolve) => io.stdout.write('', () => resolve()));
  const f = failure as NodeJS.ErrnoException | null;
  // A command that failed on it has said so already (reportError).
  if (!f || code === EXIT_FAILURE || code === EXIT_PIPE) return code;
  if (f.code === 'EPIPE') return EXIT_PIPE;
  io.stderr.write(`mram ${command}: writing standard output: ${escapeControl(f.message)}\n`);
  return EXIT_FAILURE;
}

/** Parses a byte count like QEMU's offset= (decimal or 0x hex, optional K/M/G/T suffix). */
export function parseSize(text: string, what: string): number {
  const m = /^(0x[0-9a-f]+|\d+)([kmgt]?)$/i.exec(text.trim());
  if (!m) throw new UsageError(`${what}: expected a byte count like 4096, 0x1000 or 1M, got ${JSON.stringify(text)}`);
  const base = Number(m[1]);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase()]!;
  const v = base * mult;
  if (!Number.isSafeInteger(v)) throw new UsageError(`${what}: ${text} is too large`);
  return v;
}
