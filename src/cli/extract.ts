// `mram extract FILE --block ID -o OUT | --all DIR [--offset N] [--force]`: raw RAM images, sparse.
import { extractAll, extractBlock, extractToStream, type ExtractResult } from '../extract/index.js';
import fs from 'node:fs';
import { escapeControl } from '../format/escape.js';
import { FormatError } from '../format/errors.js';
import { MigrationFile } from '../reader/migration-file.js';
import { ArgumentError, binaryToStdout, defineCommand, fileArgument, positionals, sizeOption, INPUT_OFFSET_OPTION } from './command.js';
import { EXIT_OK, reportError } from './io.js';
import { humanBytes } from './text.js';

/** `mram extract FILE --block ID -o OUT | --all DIR`: raw RAM images. */
export const extract = defineCommand(
  {
    name: 'extract',
    synopsis: ['FILE --block ID -o OUT [--offset N] [--snapshot S] [-f] [--json] [-q]', 'FILE --all DIR [--offset N] [--snapshot S] [-f] [--json] [-q]'],
    about: `Writes the raw guest RAM image of RAM blocks (mapped-ram or plain stream files).
Files are sparse: absent and all-zero pages are left as holes. FILE cannot be - (stdin).
A block that x-ignore-shared left out has no memory in the file: --block refuses it
(exit 1), --all skips it with a note.`,
    options: {
      block: { type: 'string', value: 'ID', help: 'the RAM block to write (its idstr, e.g. pc.ram)' },
      output: { type: 'string', short: 'o', value: 'OUT', help: "with --block: the image file; '-' writes the dense image to stdout" },
      all: { type: 'string', value: 'DIR', help: 'every block into DIR; file name = idstr with bytes other than\n[A-Za-z0-9_@+-.] as %XX, plus ".ram" (e.g. %2From@etc%2Facpi%2Ftables.ram)' },
      offset: INPUT_OFFSET_OPTION,
      force: { type: 'boolean', short: 'f', default: false, help: 'overwrite existing files' },
      snapshot: { type: 'string', value: 'S', help: 'FILE is a qcow2 image: the RAM of its internal snapshot S (name or id)' },
    },
    footer: 'Exit status: 0 written, 1 input or output failed, 64 usage error (see README).',
  },
  async ({ io, values, positionals: args, json, progress }) => {
    const [path] = positionals(args, ['FILE']) as [string];
    fileArgument(path, 'extract');
    const block = values.block as string | undefined;
    const out = values.output as string | undefined;
    const all = values.all as string | undefined;
    if ((all === undefined) === (block === undefined)) throw new ArgumentError('give either --block ID -o OUT or --all DIR');
    if (block !== undefined && out === undefined) throw new ArgumentError('--block needs -o OUT');
    if (all !== undefined && out !== undefined) throw new ArgumentError('-o goes with --block; --all names a directory');
    if (out !== undefined && out !== '-' && isDirectory(out)) throw new ArgumentError(`-o ${out} is a directory: name the image file (or use --all DIR for every block)`);
    if (out === '-') {
      if (json) throw new ArgumentError('--json needs -o to name a file: standard output carries the image');
      binaryToStdout(io, 'a RAM image');
    }
    const offset = sizeOption(values, 'offset');
    let file: MigrationFile | null = null;
    try {
      file = await MigrationFile.open(path, { offset, snapshot: values.snapshot as string | undefined });
      const line = progress('extract');
      const onProgress = (done: number, total: number) => line.update(done, total);
      let results: ExtractResult[];
      if (all !== undefined) {
        for (const b of file.blocks.filter((x) => x.ignored)) {
          io.stderr.write(`${escapeControl(b.id)}: skipped, left out by x-ignore-shared (its memory is not in the file)\n`);
        }
        results = await extractAll(file, all, { force: values.force as boolean, progress: onProgress });
      } else if (out === '-') {
        await extractToStream(file, file.block(block!), io.stdout, { progress: onProgress });
        results = [];
      } else results = [await extractBlock(file, file.block(block!), out!, { force: values.force as boolean, progress: onProgress })];
      const written = results.reduce((n, r) => n + r.written, 0);
      line.end(results.length ? `${results.length} image${results.length === 1 ? '' : 's'}, ${humanBytes(written)} of pages written` : undefined);
      if (json) io.stdout.write(JSON.stringify({ file: path, images: results }, null, 2) + '\n');
      return EXIT_OK;
    } catch (e) {
      // Only format errors are about the input; write errors name their file themselves.
      return reportError(io, 'extract', e, e instanceof FormatError ? path : undefined);
    } finally {
      await file?.close();
    }
  },
);

function isDirectory(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
}
