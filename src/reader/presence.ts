// Per-page facts of any RAM block as bitmaps (QEMU's layout: page i = byte i>>3, bit i&7).
import { FormatError } from '../format/errors.js';
import { setBit, setBits } from '../kernel/bit-runs.js';
import { bitmapBytes } from '../kernel/index.js';
import { MappedRamBlock, StreamRamBlock, type RamBlock } from './ram-block.js';

/** Bit set = the file holds data for the page (a set bitmap bit, or a PAGE record that won); `fileSize` bounds what is allocated. */
export function presenceBitmap(block: RamBlock, fileSize: number): Uint8Array {
  if (block instanceof MappedRamBlock) return block.bitmap;
  const bits = newBitmap(block, fileSize);
  for (const r of block.presentRuns()) setBits(bits, r.start, r.count);
  return bits;
}

/** Bit set = the stream holds more than one record for the page; null when the encoding cannot tell. */
export function resentBitmap(block: RamBlock, fileSize: number): Uint8Array | null {
  if (!(block instanceof StreamRamBlock)) return null;
  const bits = newBitmap(block, fileSize);
  if (block.resentPages === 0) return bits;
  for (let p = 0; p < block.pages; p++) if (block.wasResent(p)) setBit(bits, p, 1);
  return bits;
}

/** Bitmaps built here are sized by an untrusted used length: at most the file's size (or 256 MiB, a 8 TiB block). */
function newBitmap(block: RamBlock, fileSize: number): Uint8Array {
  const bytes = bitmapBytes(block.pages);
  const limit = Math.max(fileSize, 256 << 20);
  if (bytes > limit) throw new FormatError(block.entry.entryOffset, `a used length whose page bitmap fits in ${limit} bytes for block ${JSON.stringify(block.id)}`, String(block.usedLength));
  return new Uint8Array(bytes);
}
