// `mram` entry point: picks the command; each command lives in its own module, loaded on demand.
import { escapeControl } from '../format/escape.js';
import { EXIT_USAGE, processIO, watchStdout, type CliIO, type Command } from './io.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  inspect: { summary: 'show the structure of a migration file', load: async () => (await import('./inspect.js')).inspect },
  verify: { summary: 'check a migration file for defects', load: async () => (await import('./verify.js')).verify },
  convert: { summary: 'convert between plain streams and mapped-ram', load: async () => (await import('./convert.js')).convert },
  extract: { summary: 'write raw RAM images of RAM blocks', load: async () => (await import('./extract.js')).extract },
};

export function usage(): string {
  const lines = ['usage: mram <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(8)} ${c.summary}`);
  lines.push('', "Run 'mram <command> --help' for a command's options.");
  return lines.join('\n') + '\n';
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version') {
    io.stdout.write('mram 0.1.0\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`mram: unknown command ${JSON.stringify(escapeControl(name))}\n${usage()}`);
    return EXIT_USAGE;
  }
  const run = await command.load();
  return watchStdout(io, name, () => run(rest, io));
}
