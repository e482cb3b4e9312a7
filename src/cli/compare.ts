// `mram compare A B [--stat] [--json] [--devices]`: qemu-img compare for guest RAM (exit 0 same, 1 different, 2 error).
import { compareMigrationFiles, type CompareReport } from '../compare/compare.js';
import { escapeControl } from '../format/escape.js';
import { MigrationFile } from '../reader/migration-file.js';
import { defineCommand, fileArgument, positionals, sizeOption } from './command.js';
import { EXIT_USAGE, reportError, type CliIO, type Command } from './io.js';
import { humanBytes, table } from './text.js';

/** Exit codes of compare, as qemu-img compare's. */
export const EXIT_IDENTICAL = 0;
/** The guest RAM (or device state) differs. */
export const EXIT_DIFFERENT = 1;
/** A file could not be compared, or bad usage. */
export const EXIT_ERROR = 2;

const command = defineCommand(
  {
    name: 'compare',
    synopsis: ['A B [--stat] [--json] [--devices] [--offset-a N] [--offset-b N]'],
    about: `Compares the guest RAM of two migration files (mapped-ram, plain stream, libvirt
saves; any combination). Blocks are matched by id; absent pages read as zeros. Without
--stat or --json the comparison stops at the first difference.`,
    options: {
      stat: { type: 'boolean', help: 'per-block counts of equal, differing, only-in-A and only-in-B pages' },
      devices: { type: 'boolean', help: 'also compare device state, section by section (idstr + instance)' },
      'offset-a': { type: 'string', value: 'N', help: "A's QEMU stream starts at byte N (like file:PATH,offset=N)" },
      'offset-b': { type: 'string', value: 'N', help: "B's QEMU stream starts at byte N" },
    },
    footer: 'Exit status (as qemu-img compare): 0 identical, 1 different, 2 error (usage errors included).',
  },
  async ({ io, values, positionals: args, json, progress }) => {
    const files = positionals(args, ['A', 'B']).map((f) => fileArgument(f, 'compare'));
    const offsets = [sizeOption(values, 'offset-a'), sizeOption(values, 'offset-b')];
    const opened: MigrationFile[] = [];
    let current: string | undefined = files[0];
    try {
      for (const [i, f] of files.entries()) {
        current = f;
        opened.push(await MigrationFile.open(f, { offset: offsets[i] }));
      }
      current = undefined;
      const line = progress('compare');
      const r = await compareMigrationFiles(opened[0]!, opened[1]!, {
        stopAtFirst: !values.stat && !json,
        devices: values.devices === true,
        progress: (done, total) => line.update(done, total),
      });
      line.end();
      io.stdout.write(json ? JSON.stringify(r, null, 2) + '\n' : human(r, values.stat === true));
      return r.identical ? EXIT_IDENTICAL : EXIT_DIFFERENT;
    } catch (e) {
      reportError(io, 'compare', e, current);
      return EXIT_ERROR;
    } finally {
      for (const f of opened) await f.close();
    }
  },
);

/** Usage errors exit 2 too: scripts read 1 as "different", as with qemu-img. */
export const compare: Command = async (args: string[], io: CliIO) => {
  const code = await command(args, io);
  return code === EXIT_USAGE ? EXIT_ERROR : code;
};
function human(r: CompareReport, stat: boolean): string {
  const e = escapeControl;
  const out: string[] = [];
  for (const b of r.blocks) {
    if (b.lengthA === null) out.push(`block "${e(b.id)}" is only in B (${humanBytes(b.lengthB!)})`);
    else if (b.lengthB === null) out.push(`block "${e(b.id)}" is only in A (${humanBytes(b.lengthA)})`);
    else if (b.lengthA !== b.lengthB) out.push(`block "${e(b.id)}" has ${b.lengthA} bytes in A and ${b.lengthB} in B`);
    if (b.ignored === 'a' || b.ignored === 'b') out.push(`block "${e(b.id)}" is ignored (x-ignore-shared) in ${b.ignored.toUpperCase()} only`);
  }
  for (const d of r.devices ?? []) if (d.status !== 'equal') out.push(`device "${e(d.idstr)}" instance ${d.instanceId}: ${d.status.replace(/-/g, ' ').replace(/ a$/, ' A').replace(/ b$/, ' B')}`);
  if (stat) {
    const rows = r.blocks.map((b) => [e(b.id), String(b.equal), String(b.differing), String(b.onlyInA), String(b.onlyInB)]);
    out.push(...table(['BLOCK', 'EQUAL', 'DIFFERING', 'ONLY-IN-A', 'ONLY-IN-B'], rows, [false, true, true, true, true]));
  }
  const f = r.firstDifference;
  if (f) out.push(`Content mismatch in block "${e(f.block)}" at offset 0x${f.offset.toString(16)} (page ${f.offset / pageSizeOf(r, f.block)})!`);
  else if (!r.identical) out.push('Guest RAM is identical; device state differs.');
  else out.push('Guest RAM is identical.');
  return out.join('\n') + '\n';
}

function pageSizeOf(r: CompareReport, id: string): number {
  return r.blocks.find((b) => b.id === id)!.pageSize;
}
