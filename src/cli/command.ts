// What every subcommand shares: its options declared once (parsed with util.parseArgs and rendered
// into --help from the same table), usage errors in one style, and the conventions the README
// documents (--json on stdout, -q, progress on a TTY, stdin only where a command streams).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import { EXIT_OK, EXIT_USAGE, parseSize, type CliIO, type Command } from './io.js';
import { progressLine, type ProgressLine } from './progress.js';

/** One option of a command: its parseArgs type, short form, value name and help line. */
export interface OptionDef {
  type: 'boolean' | 'string';
  short?: string;
  /** Placeholder of a string option's value in the help ("N", "DIR"). */
  value?: string;
  /** One line (more lines are indented under it). */
  help: string;
  default?: string | boolean;
}

/** A command's name, synopsis, options and help text, from which its parser and `--help` are built. */
export interface CommandDef {
  name: string;
  /** Synopsis lines after "mram NAME". */
  synopsis: string[];
  /** What the command does, a short paragraph. */
  about: string;
  options: Record<string, OptionDef>;
  /** Text after the options (exit status etc.). */
  footer?: string;
}

/** Options every command has. */
export const COMMON_OPTIONS: Record<string, OptionDef> = {
  json: { type: 'boolean', help: 'print the result as JSON on stdout (errors stay one line on stderr)' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress or summary on stderr (warnings and errors still show)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

/** `--offset N` of a command that reads one input: where its QEMU stream starts (QEMU's file:PATH,offset=N). */
export const INPUT_OFFSET_OPTION: OptionDef = { type: 'string', value: 'N', help: 'the QEMU stream starts at byte N (like file:PATH,offset=N)' };

/** A usage error found in the arguments: printed with a pointer to --help. */
export class ArgumentError extends UsageError {}

/** A parsed command line: option values, positionals, the I/O and the progress line. */
export interface Invocation {
  io: CliIO;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  /** Progress and summary lines on stderr: live on a TTY, silent otherwise and with -q. */
  progress: (label: string) => ProgressLine;
  json: boolean;
}

/** The `--help` text of a command. */
export function renderHelp(def: CommandDef): string {
  const lines = def.synopsis.map((s, i) => `${i === 0 ? 'usage:' : '      '} mram ${def.name} ${s}`);
  lines.push('', def.about.trimEnd(), '');
  const entries = Object.entries({ ...def.options, ...COMMON_OPTIONS }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`;
    return [flag, o.help] as const;
  });
  const width = Math.max(...entries.map(([f]) => f.length)) + 2;
  for (const [flag, help] of entries) {
    const [first, ...rest] = help.split('\n');
    lines.push(`  ${flag.padEnd(width)}${first}`, ...rest.map((l) => `  ${' '.repeat(width)}${l}`));
  }
  if (def.footer) lines.push('', def.footer.trimEnd());
  return lines.join('\n') + '\n';
}

/** Prints a usage error: one line, then where the help is (never the whole help). */
export function usageError(io: CliIO, command: string, message: string): number {
  io.stderr.write(`mram ${command}: ${escapeControl(message)}\nTry 'mram ${command} --help' for more information.\n`);
  return EXIT_USAGE;
}

/**
 * A subcommand from its definition and body: parses the arguments, answers --help, turns
 * ArgumentErrors into usageError(). The body reports its own failures (reportError).
 */
export function defineCommand(def: CommandDef, body: (inv: Invocation) => Promise<number>): Command {
  const help = renderHelp(def);
  const options = Object.fromEntries(
    Object.entries({ ...def.options, ...COMMON_OPTIONS }).map(([name, o]) => [name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.default !== undefined ? { default: o.default } : {}) }]),
  ) as NonNullable<ParseArgsConfig['options']>;
  const command = async (args: string[], io: CliIO): Promise<number> => {
    let values: Invocation['values'];
    let positionals: string[];
    try {
      ({ values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true }) as { values: Invocation['values']; positionals: string[] });
    } catch (e) {
      return usageError(io, def.name, parseArgsMessage(e as Error));
    }
    if (values.help) {
      io.stdout.write(help);
      return EXIT_OK;
    }
    const quiet = values.quiet === true;
    try {
      return await body({ io, values, positionals, json: values.json === true, progress: (label) => progressLine(io.stderr, label, quiet) });
    } catch (e) {
      if (e instanceof ArgumentError) return usageError(io, def.name, e.message);
      throw e;
    }
  };
  return command;
}

/** util.parseArgs' messages, cut to their first sentence on one line ("Unknown option '--x'"). */
function parseArgsMessage(e: Error): string {
  const first = e.message.split(/\.\s/)[0]!.replace(/\s+/g, ' ').replace(/\.$/, '');
  const ambiguous = /^Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument is ambiguous$/.exec(first);
  if (ambiguous) return `${ambiguous[1]} needs a value (write ${ambiguous[1]}=VALUE for a value starting with -)`;
  const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing$/.exec(first);
  return missing ? `${missing[1]} needs a value` : first;
}

/** A path argument of a command that needs a seekable file: `-` (stdin) is refused, saying why. */
export function fileArgument(arg: string, command: string, why = 'it reads the file at random offsets'): string {
  if (arg === '-') throw new ArgumentError(`reading standard input is not supported: ${command} needs a file (${why}); save the stream to a file first`);
  return arg;
}

/** Refuses to send binary data to a terminal, as gzip does. */
export function binaryToStdout(io: CliIO, what: string): void {
  if (io.stdout.isTTY) throw new ArgumentError(`refusing to write ${what} to a terminal; redirect standard output or give a file name`);
}

/** Exactly `n` positionals named `names`, or an ArgumentError saying what is missing or extra. */
export function positionals(got: string[], names: string[]): string[] {
  if (got.length < names.length) throw new ArgumentError(`missing ${names.slice(got.length).join(' and ')}`);
  if (got.length > names.length) throw new ArgumentError(`unexpected argument ${JSON.stringify(got[names.length])} (expected ${names.join(' ')})`);
  return got;
}

/** A byte-count option (`--offset N`), undefined when absent; a bad value is an ArgumentError. */
export function sizeOption(values: Invocation['values'], name: string): number | undefined {
  const v = values[name];
  if (typeof v !== 'string') return undefined;
  try {
    return parseSize(v, `--${name}`);
  } catch (e) {
    throw e instanceof UsageError ? new ArgumentError(e.message) : e;
  }
}
