// `mram inspect`: a one-screen summary of a migration file, or its whole map as JSON.
import { escapeControl } from '../format/escape.js';
import { stat } from 'node:fs/promises';
import { FileSource } from '../io/file-source.js';
import { blockMapInput, occupancyBar } from '../map/map.js';
import { readLibvirtHeader } from '../reader/input.js';
import { MigrationFile } from '../reader/migration-file.js';
import { isQcow2File, listSnapshots } from '../reader/snapshot.js';
import { snapshotsJson, snapshotsText } from './snapshots.js';
import { defineCommand, fileArgument, positionals, sizeOption } from './command.js';
import { EXIT_FAILURE, EXIT_OK, reportError, type CliIO } from './io.js';
import { humanBytes, table } from './text.js';

/** The JSON document of `inspect --json` (spec/inspect.schema.json). */
export function inspectJson(f: MigrationFile): object {
  const c = f.configuration;
  return {
    file: { path: f.path, size: f.size, allocated: f.allocated },
    format: f.format,
    streamOffset: f.streamOffset,
    version: f.version,
    machineType: c?.machineType ?? null,
    capabilities: c?.capabilities ?? [],
    pageSize: f.pageSize,
    targetPageBits: c?.targetPageBits ?? null,
    uuid: c?.uuid ?? null,
    complete: f.complete,
    blocks: f.blocks.map((b) => ({
      id: b.id,
      usedLength: b.usedLength,
      pageSize: b.pageSize,
      bitmapOffset: b.encoding === 'mapped-ram' ? b.entry.mappedRam!.bitmapOffset : null,
      pagesOffset: b.encoding === 'mapped-ram' ? b.entry.mappedRam!.pagesOffset : null,
      pages: b.pages,
      ignored: b.ignored,
      presentPages: b.presentPages,
      entryOffset: b.entry.entryOffset,
      headerOffset: b.entry.mappedRam?.headerOffset ?? null,
      headerVersion: b.entry.mappedRam?.version ?? null,
      mrAddr: b.entry.mrAddr,
      blockPageSize: b.entry.blockPageSize,
    })),
    sections: f.sections,
    devices: f.devices,
    libvirt: f.libvirt && {
      complete: f.libvirt.complete,
      version: f.libvirt.version,
      format: f.libvirt.format,
      formatName: f.libvirt.formatName,
      wasRunning: f.libvirt.wasRunning,
      endian: f.libvirt.endian,
      xml: f.libvirt.xml,
      cookie: f.libvirt.cookie,
      dataOffset: f.libvirt.dataOffset,
    },
    vmdesc: f.vmdesc && { offset: f.vmdesc.offset, length: f.size - f.vmdesc.offset, devices: f.vmdesc.desc.devices.length },
    notes: f.notes,
  };
}

/** The one-screen summary `mram inspect` prints (with --devices, --xml or the occupancy bars). */
export function inspectText(f: MigrationFile, opts: { devices?: boolean; xml?: boolean; bars?: boolean } = {}): string {
  const e = escapeControl;
  const c = f.configuration;
  const out: string[] = [];
  const line = (k: string, v: string) => out.push(`${k.padEnd(13)}${v}`);
  // A compressed save's size is the header plus the decompressed stream (what the offsets count).
  const compressed = f.libvirt && f.libvirt.format >= 1 && f.libvirt.format <= 5;
  line('file', `${e(f.path)}  (${humanBytes(f.size)} ${compressed ? `with the ${e(f.libvirt!.formatName)} data decompressed` : 'apparent'}, ${humanBytes(f.allocated)} allocated)`);
  line('format', `${f.format}, QEMU stream version ${f.version}, at offset ${f.streamOffset}${f.complete ? '' : '  [INCOMPLETE: no EOF record]'}`);
  if (f.libvirt) {
    const l = f.libvirt;
    line('libvirt', `${l.complete ? 'LibvirtQemudSave' : 'LibvirtQemudPart (save did not complete)'} v${l.version}, format ${l.format} (${e(l.formatName)}), ${l.wasRunning ? 'was running' : 'was paused'}, XML ${l.xml.length} chars, QEMU data at ${l.dataOffset}`);
  }
  line('machine', c ? e(c.machineType) : '(no configuration section)');
  line('capabilities', c?.capabilities?.length ? c.capabilities.map(e).join(', ') : '(none)');
  line('page size', `${f.pageSize}${c?.targetPageBits != null ? ` (target-page-bits ${c.targetPageBits})` : ''}`);
  if (c?.uuid) line('uuid', c.uuid);
  const mapped = f.format === 'mapped-ram';
  const head = ['BLOCK', 'USED LENGTH', 'PAGES', 'PRESENT', '%', ...(mapped ? ['BITMAP @', 'PAGES @'] : [])];
  const rows = f.blocks.map((b) => [
    e(b.id),
    humanBytes(b.usedLength),
    String(b.pages),
    b.ignored ? 'IGNORED' : String(b.presentPages),
    b.pages && !b.ignored ? ((100 * b.presentPages) / b.pages).toFixed(1) : '-',
    ...(mapped ? (b.ignored ? ['-', '-'] : [`0x${b.entry.mappedRam!.bitmapOffset.toString(16)}`, `0x${b.entry.mappedRam!.pagesOffset.toString(16)}`]) : []),
  ]);
  const ignored = f.blocks.filter((b) => b.ignored);
  const total = f.blocks.reduce((s, b) => s + b.usedLength, 0);
  const present = f.blocks.reduce((s, b) => s + b.presentPages * b.pageSize, 0);
  line('ram', `${f.blocks.length} blocks, ${humanBytes(total)}, ${humanBytes(present)} in present pages`);
  for (const r of table(head, rows, [false, true, true, true, true, true, true])) out.push(`  ${r}`);
  if (opts.bars) out.push(...occupancyLines(f));
  if (ignored.length) {
    line('ignored', `${ignored.map((b) => e(b.id)).join(', ')}: left out by x-ignore-shared, memory not in the file (the destination maps the shared backend)`);
  }
  const counts = new Map<string, number>();
  for (const s of f.sections) counts.set(s.type, (counts.get(s.type) ?? 0) + 1);
  line('sections', [...counts].map(([t, n]) => `${n} ${t}`).join(', '));
  line('devices', `${f.devices.length} device sections${opts.devices || f.devices.length === 0 ? '' : ' (--devices lists them)'}`);
  if (opts.devices) {
    const drows = f.devices.map((d) => [e(d.idstr), String(d.instanceId), String(d.version), String(d.offset), String(d.length)]);
    for (const r of table(['DEVICE', 'INSTANCE', 'VERSION', 'OFFSET', 'LENGTH'], drows, [false, true, true, true, true])) out.push(`  ${r}`);
  }
  line('vmdesc', f.vmdesc ? `${f.vmdesc.json.length} bytes of JSON at ${f.vmdesc.offset}` : '(none)');
  for (const n of f.notes) line('note', e(n));
  return out.join('\n') + '\n';
}

/** One occupancy bar per block (terminals only: the table above stays the parseable part). */
function occupancyLines(f: MigrationFile): string[] {
  const names = f.blocks.map((b) => escapeControl(b.id));
  const w = Math.min(24, Math.max(0, ...names.map((n) => n.length)));
  return f.blocks.map((b, i) => `  ${names[i]!.slice(0, w).padEnd(w)} ▕${occupancyBar(blockMapInput(b, f.size), BAR_WIDTH)}▏`);
}

const BAR_WIDTH = 48;

/** `mram inspect FILE`: the map of a migration file or the snapshots of a qcow2 image. */
export const inspect = defineCommand(
  {
    name: 'inspect',
    synopsis: ['FILE [--offset N] [--devices] [--xml] [--json]', 'DISK.qcow2 [--snapshot NAME|ID] [--devices] [--json]'],
    about: `Shows the structure of a QEMU migration file (mapped-ram or plain stream, optionally
inside a libvirt save header). Reads metadata only. Exits 1 with one error line when the
file is not a migration file or cannot be mapped to its end (the partial map is printed).
FILE cannot be - (stdin).`,
    options: {
      offset: { type: 'string', value: 'N', help: 'the QEMU stream starts at byte N (like file:PATH,offset=N);\ndefault: after a libvirt header if present, else 0' },
      devices: { type: 'boolean', help: 'list every device section' },
      xml: { type: 'boolean', help: 'print only the domain XML of a libvirt save (for virsh define); exits 1\nwhen FILE has no libvirt header' },
      snapshot: { type: 'string', value: 'S', help: "the VM state of internal snapshot S (name or id) of a qcow2 image;\nwithout it, a qcow2 image's snapshots with VM state are listed" },
    },
    footer: `With --json the full map is printed (schema: spec/inspect.schema.json).
Exit status: 0 mapped to the end, 1 not a migration file or mapped in part, 64 usage error.`,
  },
  async ({ io, values, positionals: args, json }) => {
    const [path] = positionals(args, ['FILE']) as [string];
    fileArgument(path, 'inspect', 'the device descriptions are at its end');
    const offset = sizeOption(values, 'offset');
    if (values.xml) return printXml(path, io);
    let file: MigrationFile | undefined;
    try {
      const snapshot = values.snapshot as string | undefined;
      if (snapshot === undefined && (await isQcow2File(path))) {
        const st = await stat(path);
        const listing = { path, size: st.size, allocated: st.blocks * 512, ...(await listSnapshots(path)) };
        io.stdout.write(json ? JSON.stringify(snapshotsJson(listing), null, 2) + '\n' : snapshotsText(listing));
        return EXIT_OK;
      }
      file = await MigrationFile.open(path, { offset, snapshot });
      io.stdout.write(json ? JSON.stringify(inspectJson(file), null, 2) + '\n' : inspectText(file, { devices: values.devices === true, bars: io.stdout.isTTY === true }));
      if (file.complete) return EXIT_OK;
      // The map above is partial: say why on one line and fail, so scripts do not take it as whole.
      const why = file.notes[0] ?? 'no EOF record';
      io.stderr.write(`mram inspect: ${escapeControl(path)}: incomplete: ${escapeControl(why)}\n`);
      return EXIT_FAILURE;
    } catch (e) {
      return reportError(io, 'inspect', e, path);
    } finally {
      await file?.close();
    }
  },
);

/** `--xml`: the domain XML alone, from the header (a compressed save is not decompressed). */
async function printXml(path: string, io: CliIO): Promise<number> {
  let source: FileSource | undefined;
  try {
    source = await FileSource.open(path);
    const libvirt = await readLibvirtHeader(source);
    if (!libvirt) {
      io.stderr.write(`mram inspect: ${escapeControl(path)}: no libvirt save header, so no domain XML\n`);
      return EXIT_FAILURE;
    }
    // Lines and tabs stay as they are (virsh define reads it); other control characters are escaped.
    const xml = libvirt.xml.replace(/[^\n\t]+/g, escapeControl);
    io.stdout.write(xml.endsWith('\n') ? xml : xml + '\n');
    return EXIT_OK;
  } catch (e) {
    return reportError(io, 'inspect', e, path);
  } finally {
    await source?.close();
  }
}
