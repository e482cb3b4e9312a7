// The record encoder: a MigrationRecord back to the bytes QEMU writes for it (decode's inverse).
import { DEFAULT_TARGET_PAGE_SIZE, QEMU_VM_FILE_MAGIC, RamFlag, RecordType } from '../format/constants.js';
import { ByteWriter } from './byte-writer.js';
import { writeConfiguration } from './configuration.js';
import { writeMappedRamHeader, writeRamWord, type RamBlockEntry } from './ram.js';
import type { MigrationRecord } from './record.js';
import { writeCommand, writeFooter, writeSectionHeader } from './section.js';

/** Options of `encode`. */
export interface EncodeOptions {
  /** Target page size (turns a page index into the record's address); default 4096. */
  pageSize?: number;
  /** Append to this writer (e.g. one reused across records) instead of a new one. */
  into?: ByteWriter;
}

/**
 * The bytes QEMU writes for `r` (a view into the writer). A `ram-page` or `device-state` whose
 * `data` is null encodes without it, for a caller that appends the data from where it lies.
 * `trailing` and `stop` are not records of a stream: they throw.
 */
export function encode(r: MigrationRecord, opts: EncodeOptions = {}): Uint8Array {
  const w = opts.into ?? new ByteWriter();
  const pageSize = opts.pageSize ?? DEFAULT_TARGET_PAGE_SIZE;
  switch (r.type) {
    case 'header':
      w.u32(QEMU_VM_FILE_MAGIC).u32(r.version);
      break;
    case 'configuration':
      writeConfiguration(w, r.config);
      break;
    case 'command':
      writeCommand(w, r.command);
      break;
    case 'section':
      writeSectionHeader(w, r.header);
      break;
    case 'ram-mem-size':
      writeRamWord(w, r.total, RamFlag.MEM_SIZE);
      break;
    case 'ram-block':
      writeBlockEntry(w, r.entry);
      break;
    case 'ram-page':
    case 'ram-zero': {
      const zero = r.type === 'ram-zero';
      writeRamWord(w, r.pageIndex * pageSize, (zero ? RamFlag.ZERO : RamFlag.PAGE) | (r.continued ? RamFlag.CONTINUE : 0));
      if (!r.continued) w.countedString(r.block.idstr);
      if (zero) w.u8(r.fill);
      else if (r.data) w.bytes(r.data);
      break;
    }
    case 'ram-flush':
      writeRamWord(w, 0, RamFlag.MULTIFD_FLUSH);
      break;
    case 'ram-eos':
      writeRamWord(w, 0, RamFlag.EOS);
      break;
    case 'device-state':
      if (r.data) w.bytes(r.data);
      break;
    case 'section-footer':
      writeFooter(w, r.header.sectionId);
      break;
    case 'eof':
      w.u8(RecordType.Eof);
      break;
    case 'vmdesc': {
      const json = new TextEncoder().encode(r.vmdesc.json);
      w.u8(RecordType.VmDescription).u32(json.length).bytes(json);
      break;
    }
    default:
      throw new RangeError(`a ${r.type} record has no encoding`);
  }
  return w.view();
}

/** A MEM_SIZE block entry in QEMU's order: name, used length, page size, guest address, mapped-ram header. */
function writeBlockEntry(w: ByteWriter, e: RamBlockEntry): void {
  w.countedString(e.idstr).u64(e.usedLength);
  if (e.blockPageSize !== null) w.u64(e.blockPageSize);
  if (e.mrAddr !== null) w.u64(e.mrAddr);
  if (e.mappedRam) writeMappedRamHeader(w, e.mappedRam);
}
