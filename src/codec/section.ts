// Section headers, footers and COMMAND records of the main stream (spec/format.md §1.1–1.2).
import { COMMANDS, RecordType } from '../format/constants.js';
import { FormatError } from '../format/errors.js';
import type { ByteReader } from './byte-reader.js';
import type { ByteWriter } from './byte-writer.js';

/** START (opens an iterative section), PART, END (continue it by id), FULL (a device, whole). */
export type SectionKind = 'start' | 'part' | 'end' | 'full';

/** The header of a section record; PART/END carry their START's name, instance and version. */
export interface SectionHeader {
  kind: SectionKind;
  sectionId: number;
  /** START/FULL carry these; PART/END inherit them from their START. */
  idstr: string;
  instanceId: number;
  version: number;
}

/** The section kind of a record type byte (undefined for the other record types). */
export const SECTION_KIND_OF: Partial<Record<number, SectionKind>> = {
  [RecordType.SectionStart]: 'start',
  [RecordType.SectionPart]: 'part',
  [RecordType.SectionEnd]: 'end',
  [RecordType.SectionFull]: 'full',
};

const TYPE_OF_KIND: Record<SectionKind, number> = { start: 0x01, part: 0x02, end: 0x03, full: 0x04 };

/** Reads a START/FULL header (after the type byte); `idstr` of at most 255 bytes as QEMU allows. */
export function readFullHeader(r: ByteReader, kind: 'start' | 'full'): SectionHeader {
  const sectionId = r.u32('section id');
  const idstr = r.countedString('section idstr');
  r.need(8, 'instance id and version');
  const instanceId = r.u32('instance id');
  const version = r.u32('version');
  return { kind, sectionId, idstr, instanceId, version };
}

/** Reads the 0x7e footer closing `header`'s section (5 bytes). */
export function readFooter(r: ByteReader, header: SectionHeader): void {
  const at = r.offset;
  r.need(5, `section footer of ${JSON.stringify(header.idstr)}`);
  const marker = r.u8('footer marker');
  if (marker !== RecordType.SectionFooter) {
    throw new FormatError(at, `section footer 0x7e of ${JSON.stringify(header.idstr)} (section ${header.sectionId})`, `0x${marker.toString(16)}`, 'footer');
  }
  const id = r.u32('footer section id');
  if (id !== header.sectionId) throw new FormatError(at + 1, `footer section id ${header.sectionId}`, String(id), 'footer');
}

/** Encodes a section header with its type byte (START/FULL with name, instance and version). */
export function writeSectionHeader(w: ByteWriter, h: SectionHeader): void {
  w.u8(TYPE_OF_KIND[h.kind]).u32(h.sectionId);
  if (h.kind === 'start' || h.kind === 'full') w.countedString(h.idstr).u32(h.instanceId).u32(h.version);
}

/** Encodes the 0x7e footer of section `sectionId`. */
export function writeFooter(w: ByteWriter, sectionId: number): void {
  w.u8(RecordType.SectionFooter).u32(sectionId);
}

/** A QEMU_VM_COMMAND record: its code, name and payload. */
export interface Command {
  cmd: number;
  name: string;
  data: Uint8Array;
}

const IN_FILE = [...COMMANDS.values()].filter((c) => c.inFile).map((c) => c.name).join(', ');

/** Reads a command after its type byte; its data is copied (it outlives the buffer). */
export function readCommand(r: ByteReader): Command {
  const at = r.offset;
  r.need(4, 'command code and length');
  const cmd = r.u16('command code');
  const len = r.u16('command length');
  const known = COMMANDS.get(cmd);
  if (!known) throw new FormatError(at, 'a command code between 1 and 11', String(cmd));
  if (known.len >= 0 && len !== known.len) throw new FormatError(at + 2, `length ${known.len} for command ${known.name}`, String(len));
  const data = new Uint8Array(r.take(len, `${known.name} command data`));
  // QEMU refuses these when it loads a file, so a file holding one never restores.
  if (!known.inFile) throw new FormatError(at, `a command QEMU accepts in a file (${IN_FILE})`, known.name);
  return { cmd, name: known.name, data };
}

/** Encodes a command with its 0x08 type byte. */
export function writeCommand(w: ByteWriter, cmd: Command): void {
  w.u8(RecordType.Command).u16(cmd.cmd).u16(cmd.data.length).bytes(cmd.data);
}
