// `mram map FILE -o OUT.svg [--offset N] [--force]`: a picture of every RAM block's pages.
import { promises as fsp } from 'node:fs';
import { ramMapSvg } from '../map/map.js';
import { MigrationFile } from '../reader/migration-file.js';
import { OutputFile, refuseSameFile } from '../writer/output-file.js';
import { ArgumentError, defineCommand, fileArgument, positionals, sizeOption, INPUT_OFFSET_OPTION } from './command.js';
import { EXIT_OK, reportError } from './io.js';

/** `mram map FILE -o OUT.svg`: the SVG picture of guest RAM. */
export const map = defineCommand(
  {
    name: 'map',
    synopsis: ['FILE -o OUT.svg [--offset N] [-f]'],
    about: `Draws the file's RAM as a self-contained SVG: one band per RAM block, to scale
within its band, with present, zero/absent, re-sent (streams) and ignored pages.`,
    options: {
      output: { type: 'string', short: 'o', value: 'OUT', help: "the SVG to write ('-' for stdout)" },
      offset: INPUT_OFFSET_OPTION,
      force: { type: 'boolean', short: 'f', default: false, help: 'overwrite OUT' },
    },
    footer: 'Exit status: 0 written, 1 input or output failed, 64 usage error.',
  },
  async ({ io, values, positionals: args, json }) => {
    const [path] = positionals(args, ['FILE']) as [string];
    fileArgument(path, 'map');
    const out = values.output as string | undefined;
    if (out === undefined) throw new ArgumentError('map needs -o OUT.svg');
    if (json && out === '-') throw new ArgumentError('--json needs -o to name a file: standard output carries the SVG');
    const offset = sizeOption(values, 'offset');
    let f: MigrationFile | undefined;
    try {
      f = await MigrationFile.open(path, { offset });
      const svg = ramMapSvg(f);
      if (out === '-') io.stdout.write(svg);
      else await writeWhole(out, svg, path, values.force === true);
      if (json) io.stdout.write(JSON.stringify({ file: path, output: out, bytes: Buffer.byteLength(svg) }, null, 2) + '\n');
      return EXIT_OK;
    } catch (e) {
      return reportError(io, 'map', e, path);
    } finally {
      await f?.close();
    }
  },
);
/** Written beside the target and renamed: OUT appears only when complete; never over the input. */
async function writeWhole(out: string, text: string, input: string, force: boolean): Promise<void> {
  refuseSameFile(input, out);
  const o = await OutputFile.create(out, force);
  try {
    await fsp.writeFile(o.tempPath, text);
    await o.commit();
  } catch (e) {
    await o.discard();
    throw e;
  }
}
