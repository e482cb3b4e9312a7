// `mram` entry point: picks the command; each command lives in its own module, loaded on demand.
import fs from 'node:fs';
import { escapeControl } from '../format/escape.js';
import { EXIT_USAGE, processIO, watchStdout, type CliIO, type Command } from './io.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  inspect: { summary: 'show the structure of a migration file', load: async () => (await import('./inspect.js')).inspect },
  verify: { summary: 'check a migration file for defects', load: async () => (await import('./verify.js')).verify },
  convert: { summary: 'convert between plain streams and mapped-ram', load: async () => (await import('./convert.js')).convert },
  compare: { summary: 'compare the guest RAM of two files (exit 0 same, 1 different)', load: async () => (await import('./compare.js')).compare },
  map: { summary: 'draw every RAM block\'s pages as an SVG picture', load: async () => (await import('./map.js')).map },
  extract: { summary: 'write raw RAM images of RAM blocks', load: async () => (await import('./extract.js')).extract },
};

/** The package's version, from package.json (two levels up from src/cli and dist/cli alike). */
export function version(): string {
  return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The top-level usage text (`mram --help`). */
export function usage(): string {
  const lines = ['usage: mram <command> [options]', '       mram help <command>', '       mram --version', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(8)} ${c.summary}`);
  lines.push(
    '',
    'options of every command:',
    '  --json       the result as JSON on stdout',
    '  -q, --quiet  no progress or summary on stderr',
    '  -h, --help   the command\'s help',
    '',
    "Run 'mram help <command>' for a command's options.",
  );
  return lines.join('\n') + '\n';
}

/** Runs the mram command line; resolves to the exit status. */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(usage());
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    io.stdout.write(usage());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`mram ${version()}\n`);
    return 0;
  }
  if (name === 'help') return main([rest[0]!, '--help', ...rest.slice(1)], io);
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`mram: unknown command ${JSON.stringify(escapeControl(name))}\nTry 'mram --help' for the list of commands.\n`);
    return EXIT_USAGE;
  }
  const run = await command.load();
  return watchStdout(io, name, () => run(rest, io));
}
