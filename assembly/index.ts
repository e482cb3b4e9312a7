// mram kernel: zero-page classification into QEMU mapped-ram bitmaps.
//
// All pointers are offsets into the imported linear memory (owned by the JS Arena,
// fixed size, never grown). Bitmap layout = QEMU's on a little-endian host:
// page i -> byte i >> 3, bit i & 7; bit set = page has a non-zero byte.
// The kernel keeps no heap and no static data (the debug build's assertion messages sit below
// heapBase, inside the arena's reserved first page); it only touches what it is given.

import { bitmapSpan, inMemory, validPageSize } from './bounds';
import { scan } from './scan';

/** Lowest offset the kernel itself may use; the Arena checks it stays below its reserve. */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * Classify the pages of [ptr, ptr+len) (len a multiple of pageSize, a power of two >= 64),
 * writing bit (firstBit + i) of the bitmap at bitmapPtr for page i. Returns the non-zero page count.
 */
export function scanSimd(ptr: usize, len: usize, pageSize: usize, bitmapPtr: usize, firstBit: usize): u32 {
  assert(validPageSize(pageSize) && len % pageSize == 0, 'scanSimd: page size not a power of two >= 64, or len not a multiple of it');
  assert(inMemory(ptr, len), 'scanSimd: pages past the end of memory');
  assert(inMemory(bitmapPtr + (firstBit >>> 3), bitmapSpan(firstBit, len / pageSize)), 'scanSimd: bitmap past the end of memory');
  // 4 KiB pages (the common case, and the page size the C reference is compiled for) get their own copy
  // of the loop with the page size a constant: sample offsets become load offsets, the n < 128 test goes.
  if (pageSize == 4096) return scan(ptr, len, 4096, bitmapPtr, firstBit, true);
  return scan(ptr, len, pageSize, bitmapPtr, firstBit, true);
}

// Index of the first bit in [i, end) whose value XOR flip is 1, or >= end when none.
@inline function nextBit(base: usize, i: usize, end: usize, flip: u32): usize {
  let b = i >>> 3;
  let endByte = (end + 7) >>> 3;
  let x = ((<u32>load<u8>(base + b) ^ flip) & 0xff) >>> <u32>(i & 7);
  if (x != 0) return i + <usize>ctz(x);
  b++;
  let flip64: u64 = flip != 0 ? <u64>-1 : 0;
  // Long uniform stretches are the common case: skip them 8 bytes at a time.
  while (b + 8 <= endByte) {
    let w = load<u64>(base + b) ^ flip64;
    if (w != 0) return (b << 3) + <usize>ctz(w);
    b += 8;
  }
  while (b < endByte) {
    let y = (<u32>load<u8>(base + b) ^ flip) & 0xff;
    if (y != 0) return (b << 3) + <usize>ctz(y);
    b++;
  }
  return end;
}

/**
 * Maximal runs of bits equal to `value` (0 or 1) among bits [firstBit, firstBit+nbits) of the
 * bitmap at bitmapPtr, written as u32 (start, count) pairs at outPtr, starts relative to firstBit.
 * The caller provides room for ceil(nbits / 2) pairs. Returns the number of runs.
 */
export function bitRuns(bitmapPtr: usize, firstBit: usize, nbits: usize, value: u32, outPtr: usize): u32 {
  assert(inMemory(bitmapPtr + (firstBit >>> 3), bitmapSpan(firstBit, nbits)), 'bitRuns: bitmap past the end of memory');
  assert(inMemory(outPtr, ((<u64>nbits + 1) >> 1) << 3), 'bitRuns: no room for ceil(nbits / 2) runs before the end of memory');
  let flip: u32 = value != 0 ? 0 : 0xff;
  let end = firstBit + nbits;
  let i = firstBit;
  let runs: u32 = 0;
  while (i < end) {
    i = nextBit(bitmapPtr, i, end, flip);
    if (i >= end) break;
    let j = nextBit(bitmapPtr, i, end, flip ^ 0xff);
    if (j > end) j = end;
    let out = outPtr + (<usize>runs << 3);
    store<u32>(out, <u32>(i - firstBit));
    store<u32>(out, <u32>(j - i), 4);
    runs++;
    i = j;
  }
  return runs;
}
