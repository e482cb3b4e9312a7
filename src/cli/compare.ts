// `mram compare A B [--stat] [--json] [--devices]`: qemu-img compare for guest RAM (exit 0 same, 1 different, 2 error).
import { parseArgs } from 'node:util';
import { compareMigrationFiles, type CompareReport } from '../compare/compare.js';
import { escapeControl } from '../format/escape.js';
import { UsageError } from '../format/errors.js';
import { MigrationFile } from '../reader/migration-file.js';
import { parseSize, reportError, type CliIO, type Command } from './io.js';
import { humanBytes, table } from './text.js';

const HELP = `usage: mram compare A B [--stat] [--json] [--devices] [--offset-a N] [--offset-b N]

Compares the guest RAM of two migration files (mapped-ram, plain stream, libvirt
saves; any combination). Blocks are matched by id; absent pages read as zeros.
  --stat       per-block counts of equal, differing, only-in-A and only-in-B pages
  --json       the whole report as JSON (implies reading every page, like --stat)
  --devices    also compare device state, section by section (idstr + instance)
  --offset-a N, --offset-b N
               A's / B's QEMU stream starts at byte N (like file:PATH,offset=N)
Without --stat/--json the comparison stops at the first difference.
Exit status (as qemu-img compare): 0 identical, 1 different, 2 error.
`;

export const EXIT_IDENTICAL = 0;
export const EXIT_DIFFERENT = 1;
export const EXIT_ERROR = 2;

export const compare: Command = async (args: string[], io: CliIO): Promise<number> => {
  let values: { stat?: boolean; json?: boolean; devices?: boolean; help?: boolean; 'offset-a'?: string; 'offset-b'?: string };
  let files: string[];
  try {
    const p = parseArgs({
      args,
      allowPositionals: true,
      options: {
        stat: { type: 'boolean' },
        json: { type: 'boolean' },
        devices: { type: 'boolean' },
        'offset-a': { type: 'string' },
        'offset-b': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    values = p.values;
    files = p.positionals;
    if (!values.help && files.length !== 2) throw new UsageError('compare takes two files, A and B');
  } catch (e) {
    io.stderr.write(`mram compare: ${escapeControl((e as Error).message)}\n${HELP}`);
    return EXIT_ERROR;
  }
  if (values.help) {
    io.stdout.write(HELP);
    return EXIT_IDENTICAL;
  }
  const opened: MigrationFile[] = [];
  let current = files[0]!;
  try {
    for (const [i, f] of files.entries()) {
      current = f;
      const offset = values[i === 0 ? 'offset-a' : 'offset-b'];
      opened.push(await MigrationFile.open(f, { offset: offset === undefined ? undefined : parseSize(offset, i === 0 ? '--offset-a' : '--offset-b') }));
    }
    current = '';
    const r = await compareMigrationFiles(opened[0]!, opened[1]!, { stopAtFirst: !values.stat && !values.json, devices: values.devices });
    io.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : human(r, values.stat === true));
    return r.identical ? EXIT_IDENTICAL : EXIT_DIFFERENT;
  } catch (e) {
    reportError(io, 'compare', e, current || undefined);
    return EXIT_ERROR;
  } finally {
    for (const f of opened) await f.close();
  }
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
