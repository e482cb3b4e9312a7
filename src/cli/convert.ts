// `mram convert`: plain stream ⇄ mapped-ram, and mapped-ram re-layout; `-` for stdin/stdout.
import { parseArgs } from 'node:util';
import { FormatError, UsageError } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import { convertMigration, type MigrationFormat } from '../convert/convert.js';
import type { Progress } from '../convert/progress.js';
import type { DirectIoMode } from '../io/direct-writer.js';
import { EXIT_OK, EXIT_USAGE, parseSize, reportError, type CliIO, type Command } from './io.js';

const HELP = `usage: mram convert IN OUT [--to mapped-ram|stream] [--input-offset N] [--offset N]
                    [--direct-io auto|on|off] [--force] [--drop-libvirt-header] [--allow-incomplete]
                    [--snapshot NAME|ID]

Converts a QEMU migration file between the plain stream format and mapped-ram, or re-lays
out a mapped-ram file (new offset, zero pages rescanned).
IN may be - (stdin, a plain stream, e.g. from migrate "exec:mram convert - OUT");
OUT may be - (stdout) for --to stream. The output is written under a temporary name
beside OUT and renamed when complete.
A libvirt save (virsh save, any --image-format) converts to a libvirt save that virsh
restore accepts: header, domain XML, cookie and was_running kept, format set to sparse
(mapped-ram) or raw (stream), marked complete only once the data is durable.
An incomplete save ("LibvirtQemudPart") is refused with exit 1.

  --to FORMAT       mapped-ram or stream; default: the other format of IN (stdin: mapped-ram)
  --input-offset N  the QEMU stream of IN starts at byte N (a save made with file:IN,offset=N);
                    default: after a libvirt header if any, else 0. Without it, when IN has
                    no stream at 0, the error names the offset where one starts
  --offset N        (also --output-offset) mapped-ram output: the QEMU stream starts at byte N
                    of OUT (file:OUT,offset=N); with --force, an existing OUT keeps its first
                    N bytes, as with QEMU
  --direct-io MODE  page writes with O_DIRECT: auto (fall back with a warning), on, off
  --force           overwrite OUT if it exists
  --drop-libvirt-header  write a bare QEMU file without IN's libvirt header
  --allow-incomplete     convert an incomplete libvirt save anyway (OUT stays marked incomplete)
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
        'output-offset': { type: 'string' },
        'input-offset': { type: 'string' },
        'direct-io': { type: 'string', default: 'auto' },
        force: { type: 'boolean', default: false },
        'drop-libvirt-header': { type: 'boolean', default: false },
        'allow-incomplete': { type: 'boolean', default: false },
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
    if (values.offset !== undefined && values['output-offset'] !== undefined) throw new UsageError('give --offset or --output-offset, not both');
    const outText = values['output-offset'] ?? values.offset;
    const offset = outText === undefined ? undefined : parseSize(outText, '--offset');
    if (offset !== undefined && to === 'stream') throw new UsageError('--offset applies to mapped-ram output only (--input-offset sets where the input stream starts)');
    const inputOffset = values['input-offset'] === undefined ? undefined : parseSize(values['input-offset'], '--input-offset');
    if (inputOffset !== undefined && inArg === '-') throw new UsageError('--input-offset needs a file input, not stdin');
    const showProgress = io.stderr.isTTY === true;
    const started = Date.now();
    const result = await convertMigration(inArg === '-' ? (io.stdin as AsyncIterable<Uint8Array>) : inArg, outArg === '-' ? io.stdout : outArg, {
      to: to as MigrationFormat | undefined,
      offset,
      inputOffset,
      directIo: directIo as DirectIoMode,
      force: values.force,
      dropLibvirtHeader: values['drop-libvirt-header'],
      allowIncomplete: values['allow-incomplete'],
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
