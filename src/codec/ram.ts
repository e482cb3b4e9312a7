// RAM section records: block list, MappedRamHeader, page records (spec/format.md §3).
import { MAPPED_RAM_HEADER_SIZE, RamFlag } from '../format/constants.js';
import { be64big } from '../format/bytes.js';
import { FormatError, hex } from '../format/errors.js';
import type { ByteReader } from './byte-reader.js';
import type { ByteWriter } from './byte-writer.js';

/** The 28-byte header in front of a mapped-ram block's bitmap and page area. */
export interface MappedRamHeader {
  version: number;
  pageSize: number;
  /** Absolute file offset of the block's bitmap (Infinity when the file says 2^53 or more). */
  bitmapOffset: number;
  /** Absolute file offset of page 0 of the block. */
  pagesOffset: number;
}

/** One RAMBlock entry of the MEM_SIZE record. */
export interface RamBlockEntry {
  idstr: string;
  usedLength: number;
  /** Absolute offset of the entry's length byte. */
  entryOffset: number;
  /**
   * Page size of the block's host memory (e.g. 2 MiB hugepages), in the entry only when the
   * source had postcopy-ram on and it differs from the host's page size (`ram_save_setup`).
   */
  blockPageSize: number | null;
  /** Guest-physical base, present when x-ignore-shared is on. */
  mrAddr: number | null;
  /** The 28-byte header and where it starts; null in a plain stream. */
  mappedRam: (MappedRamHeader & { headerOffset: number }) | null;
}

/**
 * A block x-ignore-shared left out of a mapped-ram file (QEMU 11+): its header has
 * bitmap_offset = pages_offset = 0, no areas exist and the stream goes on after the header.
 * 0/0 without the capability (no guest address in the entry) is a defect consumers judge.
 */
export function hasNoAreas(h: Pick<MappedRamHeader, 'bitmapOffset' | 'pagesOffset'>): boolean {
  return h.bitmapOffset === 0 && h.pagesOffset === 0;
}

/** True for a mapped-ram block entry that x-ignore-shared left out (0/0 header, guest address present). */
export function isIgnoredEntry(e: RamBlockEntry): boolean {
  return e.mrAddr !== null && e.mappedRam !== null && hasNoAreas(e.mappedRam);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Reads a block's MappedRamHeader; version, bitmap offset and alignment are left for consumers to judge. */
export function readMappedRamHeader(r: ByteReader, idstr: string): MappedRamHeader {
  const at = r.offset;
  r.need(MAPPED_RAM_HEADER_SIZE, `mapped-ram header of block ${JSON.stringify(idstr)}`);
  // Any version is handed on: it does not change the layout (QEMU accepts 0 and 1; the reader checks).
  const version = r.u32('mapped-ram header version');
  const size = be64big(r.take(8, 'page size'), 0);
  const pageSize = Number(size);
  if (pageSize < 512 || pageSize > 1 << 30 || (pageSize & (pageSize - 1)) !== 0) {
    throw new FormatError(at + 4, 'a power-of-two page size between 512 and 1 GiB', String(size), 'page-size');
  }
  // The bitmap does not move the walk: any offset is handed on (Infinity from 2^53 on).
  const bitmap = be64big(r.take(8, 'bitmap offset'), 0);
  const bitmapOffset = bitmap <= MAX_SAFE ? Number(bitmap) : Number.POSITIVE_INFINITY;
  // The page area does: beyond 2^53 it ends beyond any file.
  const pagesAt = r.offset;
  const pages = be64big(r.take(8, 'pages offset'), 0);
  if (pages > MAX_SAFE) throw new FormatError(pagesAt, 'pages offset below 2^53', hex(pages), 'truncated');
  return { version, pageSize, bitmapOffset, pagesOffset: Number(pages) };
}

/** Encodes a MappedRamHeader (28 bytes). */
export function writeMappedRamHeader(w: ByteWriter, h: MappedRamHeader): void {
  w.u32(h.version).u64(h.pageSize).u64(h.bitmapOffset).u64(h.pagesOffset);
}

/** The be64 word that starts every RAM record: high bits an address or size, low bits flags. */
export interface RamWord {
  /** Absolute offset of the word. */
  at: number;
  addr: number;
  flags: number;
}

const TWO32 = 0x1_0000_0000;

/** Reads the word of a RAM record: the only place it is decoded. */
export function readRamWord(r: ByteReader, pageSize: number): RamWord {
  const at = r.offset;
  r.need(8, 'RAM record address and flags');
  // The flags live in the low log2(TPS) bits, below 2^32: split without a float round trip.
  const hi = r.u32('address high word');
  const lo = r.u32('address low word');
  if (hi >= 0x20_0000) throw new FormatError(at, 'RAM record address below 2^53', hex((BigInt(hi) << 32n) | BigInt(lo)));
  const mask = pageSize - 1;
  return { at, addr: hi * TWO32 + ((lo & ~mask) >>> 0), flags: lo & mask };
}

/** Encodes the word of a RAM record: the only place it is encoded. */
export function writeRamWord(w: ByteWriter, addr: number, flags: number): void {
  w.u64(addr + flags);
}

const UNSUPPORTED_FLAGS: Array<[number, string]> = [
  [RamFlag.XBZRLE, 'XBZRLE pages'],
  [RamFlag.HOOK, 'RDMA hook records'],
  [RamFlag.COMPRESS_PAGE, 'compressed pages (removed in QEMU 9.1)'],
  [RamFlag.FULL, 'the obsolete FULL flag'],
];

/** Refuses flags of RAM encodings mram does not read (XBZRLE, RDMA, compressed pages, FULL). */
export function rejectUnsupportedFlags(w: RamWord): void {
  for (const [flag, what] of UNSUPPORTED_FLAGS) {
    if (w.flags & flag) throw new FormatError(w.at, `RAM record flags mram can read (found ${what})`, hex(w.flags));
  }
}
