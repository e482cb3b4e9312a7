// Section headers, footers and COMMAND records of the main stream (spec/format.md §1.1–1.2).
import { COMMANDS, RecordType } from '../format/constants.js';
import { FormatError } from '../format/errors.js';
import type { Cursor } from '../io/cursor.js';
import type { ByteWriter } from './byte-writer.js';

export type SectionKind = 'start' | 'part' | 'end' | 'full';

export interface SectionHeader {
  kind: SectionKind;
  sectionId: number;
  /** START/FULL carry these; PART/END inherit them from their START. */
  idstr: string;
  instanceId: number;
  version: number;
}

export const SECTION_KIND_OF: Partial<Record<number, SectionKind>> = {
  [RecordType.SectionStart]: 'start',
  [RecordType.SectionPart]: 'part',
  [RecordType.SectionEnd]: 'end',
  [RecordType.SectionFull]: 'full',
};

const TYPE_OF_KIND: Record<SectionKind, number> = { start: 0x01, part: 0x02, end: 0x03, full: 0x04 };

/** Reads a START/FULL header (after the type byte); `idstr` of at most 255 bytes as QEMU allows. */
export async function readFullHeader(c: Cursor, kind: 'start' | 'full'): Promise<SectionHeader> {
  const sectionId = await c.readU32('section id');
  const idstr = await c.readCountedString('section idstr');
  await c.need(8, 'instance id and version');
  const instanceId = c.u32();
  const version = c.u32();
  return { kind, sectionId, idstr, instanceId, version };
}

export async function readFooter(c: Cursor, header: SectionHeader): Promise<void> {
  const at = c.offset;
  await c.need(5, `section footer of ${JSON.stringify(header.idstr)}`);
  const marker = c.u8();
  if (marker !== RecordType.SectionFooter) {
    throw new FormatError(at, `section footer 0x7e of ${JSON.stringify(header.idstr)} (section ${header.sectionId})`, `0x${marker.toString(16)}`, 'footer');
  }
  const id = c.u32();
  if (id !== header.sectionId) throw new FormatError(at + 1, `footer section id ${header.sectionId}`, String(id), 'footer');
}

export function writeSectionHeader(w: ByteWriter, h: SectionHeader): void {
  w.u8(TYPE_OF_KIND[h.kind]).u32(h.sectionId);
  if (h.kind === 'start' || h.kind === 'full') w.countedString(h.idstr).u32(h.instanceId).u32(h.version);
}

export function writeFooter(w: ByteWriter, sectionId: number): void {
  w.u8(RecordType.SectionFooter).u32(sectionId);
}

export interface Command {
  cmd: number;
  name: string;
  data: Uint8Array;
}

export async function readCommand(c: Cursor): Promise<Command> {
  const at = c.offset;
  await c.need(4, 'command code and length');
  const cmd = c.u16();
  const len = c.u16();
  const known = COMMANDS.get(cmd);
  if (!known) throw new FormatError(at, 'a command code between 1 and 11', String(cmd));
  if (known.len >= 0 && len !== known.len) throw new FormatError(at + 2, `length ${known.len} for command ${known.name}`, String(len));
  const data = (await c.readBytes(len, `${known.name} command data`)).slice();
  return { cmd, name: known.name, data };
}

export function writeCommand(w: ByteWriter, cmd: Command): void {
  w.u8(RecordType.Command).u16(cmd.cmd).u16(cmd.data.length).bytes(cmd.data);
}
