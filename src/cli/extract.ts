// `mram extract FILE --block ID -o OUT | --all DIR [--offset N] [--force]`: raw RAM images, sparse.
import { FormatError, UsageError } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import { extractAll, extractBlock, extractToStream } from '../extract/index.js';
import { MigrationFile } from '../reader/migration-file.js';
import { EXIT_OK, parseSize, reportError, type CliIO, type Command } from './io.js';

const HELP = `usage: mram extract FILE --block ID -o OUT [--offset N] [--force] [--snapshot NAME|ID]
       mram extract FILE --all DIR [--offset N] [--force] [--snapshot NAME|ID]

Writes the raw guest RAM image of RAM blocks (mapped-ram or plain stream files).
  --block ID -o OUT  one block; OUT '-' writes the dense image to stdout
  --all DIR          every block into DIR; file name = idstr with bytes other than
                     [A-Za-z0-9_@+-.] as %XX, plus ".ram" (e.g. %2From@etc%2Facpi%2Ftables.ram)
  --force            overwrite existing files
  --snapshot S       FILE is a qcow2 image: the RAM of its internal snapshot S
Files are sparse: absent and all-zero pages are left as holes.
A block that x-ignore-shared left out has no memory in the file: --block refuses it
(exit 1), --all skips it with a note.
`;

interface ExtractArgs {
  file: string;
  block?: string;
  out?: string;
  all?: string;
  offset?: number;
  force: boolean;
  snapshot?: string;
}

function parseArgs(args: string[]): ExtractArgs | null {
  const o: Partial<ExtractArgs> = { force: false };
  const value = (i: number, flag: string) => {
    const v = args[i];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') return null;
    else if (a === '--force' || a === '-f') o.force = true;
    else if (a === '--block') o.block = value(++i, a);
    else if (a === '-o' || a === '--output') o.out = value(++i, a);
    else if (a === '--all') o.all = value(++i, a);
    else if (a === '--snapshot') o.snapshot = value(++i, a);
    else if (a === '--offset') o.offset = parseSize(value(++i, a), '--offset');
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${JSON.stringify(a)}`);
    else if (o.file !== undefined) throw new UsageError('extract takes one FILE');
    else o.file = a;
  }
  if (o.file === undefined) throw new UsageError('extract needs a FILE');
  if ((o.all === undefined) === (o.block === undefined)) throw new UsageError('give either --block ID -o OUT or --all DIR');
  if (o.block !== undefined && o.out === undefined) throw new UsageError('--block needs -o OUT');
  return o as ExtractArgs;
}

export const extract: Command = async (args: string[], io: CliIO): Promise<number> => {
  let o: ExtractArgs | null;
  try {
    o = parseArgs(args);
  } catch (e) {
    io.stderr.write(HELP);
    return reportError(io, 'extract', e);
  }
  if (!o) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  let file: MigrationFile | null = null;
  try {
    file = await MigrationFile.open(o.file, { offset: o.offset, snapshot: o.snapshot });
    if (o.all !== undefined) {
      for (const b of file.blocks.filter((x) => x.ignored)) {
        io.stderr.write(`${escapeControl(b.id)}: skipped, left out by x-ignore-shared (its memory is not in the file)\n`);
      }
      for (const r of await extractAll(file, o.all, { force: o.force })) {
        io.stderr.write(`${escapeControl(r.block)} -> ${escapeControl(r.path)} (${r.length} bytes, ${r.written} written)\n`);
      }
    } else if (o.out === '-') {
      await extractToStream(file, file.block(o.block!), io.stdout);
    } else {
      await extractBlock(file, file.block(o.block!), o.out!, { force: o.force });
    }
    return EXIT_OK;
  } catch (e) {
    // Only format errors are about the input; write errors name their file themselves.
    return reportError(io, 'extract', e, e instanceof FormatError ? o.file : undefined);
  } finally {
    await file?.close();
  }
};
