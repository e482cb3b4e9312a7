// `mram map FILE -o OUT.svg [--offset N] [--force]`: a picture of every RAM block's pages.
import { promises as fsp } from 'node:fs';
import { parseArgs } from 'node:util';
import { escapeControl } from '../format/escape.js';
import { UsageError } from '../format/errors.js';
import { ramMapSvg } from '../map/map.js';
import { MigrationFile } from '../reader/migration-file.js';
import { OutputFile, refuseSameFile } from '../writer/output-file.js';
import { EXIT_OK, EXIT_USAGE, parseSize, reportError, type CliIO, type Command } from './io.js';

const HELP = `usage: mram map FILE -o OUT.svg [--offset N] [--force]

Draws the file's RAM as a self-contained SVG: one band per RAM block, to scale
within its band, with present, zero/absent, re-sent (streams) and ignored pages.
  -o OUT       the SVG to write ('-' for stdout)
  --offset N   the QEMU stream starts at byte N (like file:PATH,offset=N)
  --force      overwrite OUT
`;

export const map: Command = async (args: string[], io: CliIO): Promise<number> => {
  let v: { output?: string; offset?: string; force?: boolean; help?: boolean };
  let file: string;
  try {
    const p = parseArgs({
      args,
      allowPositionals: true,
      options: { output: { type: 'string', short: 'o' }, offset: { type: 'string' }, force: { type: 'boolean', short: 'f' }, help: { type: 'boolean', short: 'h' } },
    });
    v = p.values;
    if (v.help) {
      io.stdout.write(HELP);
      return EXIT_OK;
    }
    if (p.positionals.length !== 1) throw new UsageError('map takes one FILE');
    if (v.output === undefined) throw new UsageError('map needs -o OUT.svg');
    file = p.positionals[0]!;
  } catch (e) {
    io.stderr.write(`mram map: ${escapeControl((e as Error).message)}\n${HELP}`);
    return EXIT_USAGE;
  }
  let f: MigrationFile | undefined;
  try {
    f = await MigrationFile.open(file, { offset: v.offset === undefined ? undefined : parseSize(v.offset, '--offset') });
    const svg = ramMapSvg(f);
    if (v.output === '-') io.stdout.write(svg);
    else await writeWhole(v.output!, svg, file, v.force === true);
    return EXIT_OK;
  } catch (e) {
    return reportError(io, 'map', e, file);
  } finally {
    await f?.close();
  }
};

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
