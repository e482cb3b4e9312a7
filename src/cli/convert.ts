// `mram convert`: plain stream ⇄ mapped-ram, and mapped-ram re-layout; `-` for stdin/stdout.
import { parseArgs } from 'node:util';
import { FormatError, UsageError } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import { convertMigration, type MigrationFormat } from '../convert/convert.js';
import type { Progress } from '../convert/progress.js';
import type { DirectIoMode } from '../io/direct-writer.js';
import { EXIT_OK, EXIT_USAGE, parseSize, reportError, type CliIO, type Command } from './io.js';

const HELP = `usage: mram convert IN OUT [--to mapped-ram|stream] [--offset N] [--direct-io auto|on|off] [--force]
                         [--snapshot NAME|ID]

Converts a QEMU migration file between the plain stream format and mapped-ram, or re-lays
out a mapped-ram file (new offset, libvirt header dropped, zero pages rescanned).
IN may be - (stdin, a plain stream, e.g. from migrate "exec:mram convert - OUT");
OUT may be - (stdout) for --to stream. The output is written under a temporary name
beside OUT and renamed when complete.

  --to FORMAT       mapped-ram or stream; default: the other format of IN (stdin: mapped-ram)
  --offset N        mapped-ram output: the QEMU stream starts at byte N (file:OUT,offset=N);
                    with --force, an existing OUT keeps its first N bytes, as with QEMU
  --direct-io MODE  page writes with O_DIRECT: auto (fall back with a warning), on, off
  --force           overwrite OUT if it exists
  --snapshot S      IN is a qcow2 image: convert the VM state of its internal snapshot S
`;

export const convert: Command = async (args: string[], io: CliIO): Promise<number> => {
  let input = '';
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        to: { type: 'string' },
        offset: { type: 'string' },
        'direct-io': { type: 'string', default: 'auto' },
        force: { type: 'boolean', default: false },
        snapshot: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      io.stdout.write(HELP);
      return EXIT_OK;
    }
    if (positionals.length !== 2) throw new UsageError(`expected IN and OUT, got ${positionals.length} arguments\n${HELP}`);
    const [inArg, outArg] = positionals as [string, string];
    input = inArg;
    const to = values.to;
    if (to !== undefined && to !== 'mapped-ram' && to !== 'stream') throw new UsageError(`--to: expected mapped-ram or stream, got ${JSON.stringify(to)}`);
    const directIo = values['direct-io'];
    if (directIo !== 'auto' && directIo !== 'on' && directIo !== 'off') throw new UsageError(`--direct-io: expected auto, on or off, got ${JSON.stringify(directIo)}`);
    const offset = values.offset === undefined ? undefined : parseSize(values.offset, '--offset');
    if (offset !== undefined && to === 'stream') throw new UsageError('--offset applies to mapped-ram output only');
    const showProgress = io.stderr.isTTY === true;
    const started = Date.now();
    const result = await convertMigration(inArg === '-' ? (io.stdin as AsyncIterable<Uint8Array>) : inArg, outArg === '-' ? io.stdout : outArg, {
      to: to as MigrationFormat | undefined,
      offset,
      directIo: directIo as DirectIoMode,
      force: values.force,
      snapshot: values.snapshot,
      onWarning: (m) => io.stderr.write(`mram convert: warning: ${escapeControl(m)}\n`),
      onProgress: showProgress ? (p) => io.stderr.write(`\r${progressLine(p, Date.now() - started)}\x1b[K`) : undefined,
    });
    if (showProgress) io.stderr.write(`\r${result.from} → ${result.to}: ${mib(result.bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s${result.direct ? ' (O_DIRECT)' : ''}\x1b[K\n`);
    return EXIT_OK;
  } catch (e) {
    // Only format errors are about the input; write errors name their file themselves.
    const code = reportError(io, 'convert', e, e instanceof FormatError && input && input !== '-' ? input : undefined);
    return e instanceof UsageError ? EXIT_USAGE : code;
  }
};

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** "812.0 MiB read, 420.3 MiB/s, ETA 3 s" — ETA only when the input size is known. */
export function progressLine(p: Progress, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? p.bytesIn / (elapsedMs / 1000) : 0;
  let line = `${mib(p.bytesIn)} read, ${mib(p.bytesOut)} written, ${mib(rate)}/s`;
  if (p.totalIn && rate > 0) line += `, ETA ${Math.max(0, Math.ceil((p.totalIn - p.bytesIn) / rate))} s`;
  return line;
}
