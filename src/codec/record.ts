// The records of a migration stream: what `decode` hands out and `encode` writes back.
import { FormatError } from '../format/errors.js';
import type { Configuration } from './configuration.js';
import type { RamBlockEntry } from './ram.js';
import type { Command, SectionHeader } from './section.js';
import type { LocatedVmdesc, VmsdDescription } from './vmdesc.js';

/** One record of a migration stream, as `decode` hands it out (offsets are absolute). */
export type MigrationRecord =
  | { type: 'header'; offset: number; version: number }
  | { type: 'configuration'; offset: number; length: number; config: Configuration }
  | { type: 'command'; offset: number; command: Command }
  /** A section begins; its payload records follow, then `section-footer`. */
  | { type: 'section'; offset: number; header: SectionHeader }
  | { type: 'ram-mem-size'; offset: number; total: number }
  /**
   * A block entry; with a mapped-ram header its fields are as found (any version, any sane page
   * size: consumers judge them). The jump over its page area follows this record.
   */
  | { type: 'ram-block'; offset: number; entry: RamBlockEntry }
  /**
   * A PAGE record; `data` is a view valid until the next record (only when page data is asked for).
   * `continued`: the CONTINUE flag (the block is the previous page record's, its name not repeated).
   */
  | { type: 'ram-page'; offset: number; block: RamBlockEntry; pageIndex: number; dataOffset: number; data: Uint8Array | null; continued: boolean }
  /** A ZERO record: the page is filled with `fill` (QEMU's loader refuses any fill but 0). */
  | { type: 'ram-zero'; offset: number; block: RamBlockEntry; pageIndex: number; fill: number; continued: boolean }
  | { type: 'ram-flush'; offset: number }
  | { type: 'ram-eos'; offset: number }
  /**
   * Payload of a FULL device section, sized by `device` (entry `deviceIndex` of the vmdesc, whose
   * name and instance match the header; its `version` is not checked); `data` only with `deviceData`.
   */
  | { type: 'device-state'; offset: number; length: number; header: SectionHeader; device: VmsdDescription; deviceIndex: number; data: Uint8Array | null }
  /** Footer consumed; the section spans [sectionOffset, offset + 5). */
  | { type: 'section-footer'; offset: number; sectionOffset: number; header: SectionHeader }
  | { type: 'eof'; offset: number }
  | { type: 'vmdesc'; offset: number; length: number; vmdesc: LocatedVmdesc }
  /** Bytes after the stream (QEMU never writes any); counted up to 64 MiB, `more` when the input goes on. */
  | { type: 'trailing'; offset: number; length: number; more: boolean }
  /**
   * Parsing cannot go on without guessing: the walk ends here. `kind`: no vmdesc to size a FULL
   * device section, a vmdesc listing fewer devices than the stream holds, or an iterative section
   * of a device other than "ram".
   */
  | { type: 'stop'; offset: number; kind: StopKind; reason: string };

/** Why a walk stopped early (see the `stop` record). */
export type StopKind = 'no-vmdesc' | 'vmdesc-short' | 'iterative';

/**
 * A device section whose version differs from the one its vmdesc entry records (both written by
 * the same QEMU): QEMU's loader refuses it ("unsupported version", "too old"). Null when they agree.
 */
export function deviceVersionMismatch(r: Extract<MigrationRecord, { type: 'device-state' }>): FormatError | null {
  if (r.device.version === undefined || r.device.version === r.header.version) return null;
  return new FormatError(r.offset, `device section ${JSON.stringify(r.header.idstr)} at version ${r.device.version}, as its vmdesc entry records`, `version ${r.header.version}`, 'device');
}

