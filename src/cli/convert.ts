// `mram convert`: plain stream ⇄ mapped-ram, and mapped-ram re-layout; `-` for stdin/stdout.
import { FormatError, UsageError } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import { convertMigration, type MigrationFormat } from '../convert/convert.js';
import type { DirectIoMode } from '../io/direct-writer.js';
import { ArgumentError, binaryToStdout, defineCommand, positionals, sizeOption } from './command.js';
import { EXIT_OK, EXIT_USAGE, reportError } from './io.js';
import { humanBytes } from './text.js';

/** `mram convert IN OUT`: stream ↔ mapped-ram, libvirt header kept. */
export const convert = defineCommand(
  {
    name: 'convert',
    synopsis: ['IN OUT [--to mapped-ram|stream] [--input-offset N] [--offset N] [--direct-io auto|on|off] [-f] [--drop-libvirt-header] [--allow-incomplete] [--snapshot S] [--json] [-q]'],
    about: `Converts a QEMU migration file between the plain stream format and mapped-ram, or re-lays
out a mapped-ram file (new offset, zero pages rescanned).
A libvirt save (virsh save, any --image-format) converts to a libvirt save that virsh
restore accepts: header, domain XML, cookie and was_running kept, format set to sparse
(mapped-ram) or raw (stream), marked complete only once the data is durable.
An incomplete save ("LibvirtQemudPart") is refused with exit 1.
IN may be - (stdin, a plain stream, e.g. from migrate "exec:mram convert - OUT");
OUT may be - (stdout, never a terminal) for --to stream. The output is written under a
temporary name beside OUT and renamed when complete.`,
    options: {
      to: { type: 'string', value: 'FORMAT', help: 'mapped-ram or stream; default: the other format of IN (stdin: mapped-ram)' },
      'input-offset': { type: 'string', value: 'N', help: 'the QEMU stream of IN starts at byte N (a save made with file:IN,offset=N);\ndefault: after a libvirt header if any, else 0. Without it, when IN has\nno stream at 0, the error names the offset where one starts' },
      offset: { type: 'string', value: 'N', help: 'mapped-ram output: the QEMU stream starts at byte N of OUT\n(file:OUT,offset=N); with --force, an existing OUT keeps its first\nN bytes, as with QEMU' },
      'output-offset': { type: 'string', value: 'N', help: 'the same as --offset' },
      'direct-io': { type: 'string', value: 'MODE', default: 'auto', help: 'page writes with O_DIRECT: auto (fall back with a warning), on, off' },
      force: { type: 'boolean', short: 'f', default: false, help: 'overwrite OUT if it exists' },
      'drop-libvirt-header': { type: 'boolean', default: false, help: "write a bare QEMU file without IN's libvirt header" },
      'allow-incomplete': { type: 'boolean', default: false, help: 'convert an incomplete libvirt save anyway (OUT stays marked incomplete)' },
      snapshot: { type: 'string', value: 'S', help: 'IN is a qcow2 image: convert the VM state of its internal snapshot S (name or id)' },
    },
    footer: 'Exit status: 0 converted, 1 input or output failed, 64 usage error (see README).',
  },
  async ({ io, values, positionals: args, json, progress }) => {
    let input = '';
    try {
      const [inArg, outArg] = positionals(args, ['IN', 'OUT']) as [string, string];
      input = inArg;
      const to = values.to as string | undefined;
      if (to !== undefined && to !== 'mapped-ram' && to !== 'stream') throw new ArgumentError(`--to: expected mapped-ram or stream, got ${JSON.stringify(to)}`);
      const directIo = values['direct-io'];
      if (directIo !== 'auto' && directIo !== 'on' && directIo !== 'off') throw new ArgumentError(`--direct-io: expected auto, on or off, got ${JSON.stringify(directIo)}`);
      if (values.offset !== undefined && values['output-offset'] !== undefined) throw new ArgumentError('give --offset or --output-offset, not both');
      const offset = sizeOption(values, 'offset') ?? sizeOption(values, 'output-offset');
      if (offset !== undefined && to === 'stream') throw new ArgumentError('--offset applies to mapped-ram output only (--input-offset sets where the input stream starts)');
      const inputOffset = sizeOption(values, 'input-offset');
      if (inputOffset !== undefined && inArg === '-') throw new ArgumentError('--input-offset needs a file input, not stdin');
      if (outArg === '-') {
        if (json) throw new ArgumentError('--json needs OUT to be a file: standard output carries the stream');
        binaryToStdout(io, 'a migration stream');
      }
      const line = progress('convert');
      const result = await convertMigration(inArg === '-' ? (io.stdin as AsyncIterable<Uint8Array>) : inArg, outArg === '-' ? io.stdout : outArg, {
        to: to as MigrationFormat | undefined,
        offset,
        inputOffset,
        directIo: directIo as DirectIoMode,
        force: values.force as boolean,
        dropLibvirtHeader: values['drop-libvirt-header'] as boolean,
        allowIncomplete: values['allow-incomplete'] as boolean,
        snapshot: values.snapshot as string | undefined,
        onWarning: (m) => io.stderr.write(`mram convert: warning: ${escapeControl(m)}\n`),
        onProgress: (p) => line.update(p.bytesIn, p.totalIn, `${humanBytes(p.bytesOut)} written`),
      });
      line.end(`${result.from} → ${result.to}, ${humanBytes(result.bytes)}${result.direct ? ' (O_DIRECT)' : ''}`);
      if (json) io.stdout.write(JSON.stringify({ input: inArg, output: outArg, from: result.from, to: result.to, bytes: result.bytes, direct: result.direct }, null, 2) + '\n');
      return EXIT_OK;
    } catch (e) {
      if (e instanceof ArgumentError) throw e;
      // Only format errors are about the input; write errors name their file themselves.
      const code = reportError(io, 'convert', e, e instanceof FormatError && input && input !== '-' ? input : undefined);
      return e instanceof UsageError ? EXIT_USAGE : code;
    }
  },
);
