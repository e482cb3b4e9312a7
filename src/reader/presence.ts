// Per-page facts of any RAM block as bitmaps (QEMU's layout: page i = byte i>>3, bit i&7).
import { bitmapBytes } from '../kernel/index.js';
import { MappedRamBlock, StreamRamBlock, type RamBlock } from './ram-block.js';

/** Bit set = the file holds data for the page (a set bitmap bit, or a PAGE record that won). */
export function presenceBitmap(block: RamBlock): Uint8Array {
  if (block instanceof MappedRamBlock) return block.bitmap;
  const bits = new Uint8Array(bitmapBytes(block.pages));
  for (const r of block.presentRuns()) setBits(bits, r.start, r.count);
  return bits;
}

/** Bit set = the stream holds more than one record for the page; null when the encoding cannot tell. */
export function resentBitmap(block: RamBlock): Uint8Array | null {
  if (!(block instanceof StreamRamBlock)) return null;
  const bits = new Uint8Array(bitmapBytes(block.pages));
  if (block.resentPages === 0) return bits;
  for (let p = 0; p < block.pages; p++) if (block.wasResent(p)) bits[p >>> 3] = bits[p >>> 3]! | (1 << (p & 7));
  return bits;
}

/**
 * Whether the block is ignored (x-ignore-shared: its RAM is not in the file). Uses the reader's
 * `ignored` property where the reader has one; a mapped-ram block with bitmap and pages offsets both 0 otherwise.
 */
export function isIgnoredBlock(block: RamBlock): boolean {
  const flag = (block as { ignored?: unknown }).ignored;
  if (typeof flag === 'boolean') return flag;
  const m = block.entry.mappedRam;
  return m !== null && m !== undefined && m.bitmapOffset === 0 && m.pagesOffset === 0;
}

/** Sets bits [start, start+count) of a bitmap, whole bytes where it can. */
export function setBits(bits: Uint8Array, start: number, count: number): void {
  let p = start;
  const end = start + count;
  while (p < end && p & 7) bits[p >>> 3] = bits[p >>> 3]! | (1 << (p++ & 7));
  if (end - p >= 8) {
    bits.fill(0xff, p >>> 3, end >>> 3);
    p = end - (end % 8);
  }
  while (p < end) bits[p >>> 3] = bits[p >>> 3]! | (1 << (p++ & 7));
}
