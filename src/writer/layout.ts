// Where QEMU puts every mapped-ram block entry, header, bitmap and page area (spec §3.2).
import { MAPPED_RAM_FILE_OFFSET_ALIGNMENT, MAPPED_RAM_HEADER_SIZE } from '../format/constants.js';
import { UsageError } from '../format/errors.js';
import { bitmapBytes } from '../kernel/scanner.js';

/** A RAMBlock as the MEM_SIZE record lists it. */
export interface RamBlockSpec {
  id: string;
  usedLength: number;
  /** Target page size; default 4096. */
  pageSize?: number;
  /** Guest-physical base, written only when x-ignore-shared is on. */
  mrAddr?: number | null;
  /**
   * Left out by x-ignore-shared (needs `mrAddr`): as QEMU 11 writes it, the header has
   * bitmap_offset = pages_offset = 0, no area is reserved and the next entry follows the header.
   */
  ignored?: boolean;
}

/** One block's place in the file; every offset is absolute. */
export interface BlockLayout {
  id: string;
  usedLength: number;
  pageSize: number;
  pages: number;
  /** The u8 idstr length byte of the block entry. */
  entryOffset: number;
  /** The 28-byte MappedRamHeader. */
  headerOffset: number;
  bitmapOffset: number;
  bitmapSize: number;
  pagesOffset: number;
  /** First byte after the page area (after the header for an ignored block): the next block entry, or the EOS word. */
  end: number;
  mrAddr: number | null;
  ignored: boolean;
}

/** Places one block whose entry starts at `entryOffset`, as `mapped_ram_setup_ramblock` does. */
export function placeBlock(block: RamBlockSpec, entryOffset: number): BlockLayout {
  const pageSize = block.pageSize ?? 4096;
  if (block.id.length < 1 || block.id.length > 255) throw new RangeError(`RAM block idstr must be 1..255 bytes: ${JSON.stringify(block.id)}`);
  if (!Number.isSafeInteger(block.usedLength) || block.usedLength < 0 || block.usedLength % pageSize !== 0) {
    throw new RangeError(`used length of ${block.id} must be a multiple of the page size ${pageSize}: ${block.usedLength}`);
  }
  const mrAddr = block.mrAddr ?? null;
  const headerOffset = entryOffset + 1 + block.id.length + 8 + (mrAddr === null ? 0 : 8);
  const pages = block.usedLength / pageSize;
  if (block.ignored) {
    if (mrAddr === null) throw new RangeError(`block ${block.id} can be left out only under x-ignore-shared (it needs a guest address)`);
    const end = headerOffset + MAPPED_RAM_HEADER_SIZE;
    return { id: block.id, usedLength: block.usedLength, pageSize, pages, entryOffset, headerOffset, bitmapOffset: 0, bitmapSize: 0, pagesOffset: 0, end, mrAddr, ignored: true };
  }
  const bitmapOffset = headerOffset + MAPPED_RAM_HEADER_SIZE;
  const bitmapSize = bitmapBytes(pages);
  const pagesOffset = roundUp(bitmapOffset + bitmapSize, MAPPED_RAM_FILE_OFFSET_ALIGNMENT);
  // Offsets are exact integers only below 2^53 (a huge --offset or block length gets here).
  if (!Number.isSafeInteger(pagesOffset + block.usedLength)) throw new UsageError(`block ${JSON.stringify(block.id)} would end beyond byte 2^53 of the file (entry at ${entryOffset})`);
  return { id: block.id, usedLength: block.usedLength, pageSize, pages, entryOffset, headerOffset, bitmapOffset, bitmapSize, pagesOffset, end: pagesOffset + block.usedLength, mrAddr, ignored: false };
}

/** Places every block in MEM_SIZE order from the first entry's offset; `eosOffset` is where the START payload's EOS goes. */
export function layoutBlocks(blocks: readonly RamBlockSpec[], firstEntryOffset: number): { blocks: BlockLayout[]; eosOffset: number } {
  const out: BlockLayout[] = [];
  let at = firstEntryOffset;
  for (const b of blocks) {
    const l = placeBlock(b, at);
    out.push(l);
    at = l.end;
  }
  return { blocks: out, eosOffset: at };
}

/** `n` rounded up to a multiple of `to`. */
export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
