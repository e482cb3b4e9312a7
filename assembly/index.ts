// mram kernel: zero-page classification into QEMU mapped-ram bitmaps.
//
// All pointers are offsets into the imported linear memory (owned by the JS Arena,
// fixed size, never grown). Bitmap layout = QEMU's on a little-endian host:
// page i -> byte i >> 3, bit i & 7; bit set = page has a non-zero byte.
// The kernel keeps no heap and no static data; it only touches what it is given.

/** Lowest offset the kernel itself may use; the Arena checks it stays below its reserve. */
export function heapBase(): usize {
  return __heap_base;
}

// Like QEMU's buffer_is_zero: sample first/middle/last word so typical non-zero
// pages are rejected after touching at most three cache lines.
// The out-of-order sample loads break the sequential stream the prefetcher follows (~15% at RAM
// speed), so scan() only samples right after a non-zero page; zero pages come in long runs.
@inline function sampledNonZero(p: usize, n: usize): bool {
  return (load<u64>(p) | load<u64>(p + (n >>> 1)) | load<u64>(p + n - 8)) != 0;
}

// n is a power of two >= 64: either exactly 64 or a multiple of 128.
@inline function pageIsZeroSimd(p: usize, n: usize, sample: bool): bool {
  if (sample && sampledNonZero(p, n)) return false;
  if (n < 128) {
    let v = v128.or(
      v128.or(v128.load(p), v128.load(p, 16)),
      v128.or(v128.load(p, 32), v128.load(p, 48)),
    );
    return !v128.any_true(v);
  }
  let end = p + n;
  do {
    // OR-reduce 8 vectors (two cache lines) and branch once per step.
    let a = v128.or(
      v128.or(v128.or(v128.load(p), v128.load(p, 16)), v128.or(v128.load(p, 32), v128.load(p, 48))),
      v128.or(v128.or(v128.load(p, 64), v128.load(p, 80)), v128.or(v128.load(p, 96), v128.load(p, 112))),
    );
    if (v128.any_true(a)) return false;
    p += 128;
  } while (p < end);
  return true;
}

// Scalar twin of pageIsZeroSimd, for measuring what SIMD buys.
@inline function pageIsZeroScalar(p: usize, n: usize, sample: bool): bool {
  if (sample && sampledNonZero(p, n)) return false;
  let end = p + n;
  do {
    let a =
      (load<u64>(p) | load<u64>(p, 8) | load<u64>(p, 16) | load<u64>(p, 24)) |
      (load<u64>(p, 32) | load<u64>(p, 40) | load<u64>(p, 48) | load<u64>(p, 56));
    if (a != 0) return false;
    p += 64;
  } while (p < end);
  return true;
}

// Merge bits [lo, hi) of `acc` into the bitmap byte, preserving the other bits.
@inline function flushByte(at: usize, lo: u32, hi: u32, acc: u32): void {
  let mask = ((<u32>1 << hi) - 1) & (<u32>0xff << lo);
  store<u8>(at, (<u32>load<u8>(at) & ~mask) | acc);
}

// Shared bitmap-writing loop; `simd` is a compile-time constant after inlining.
@inline function scan(ptr: usize, len: usize, pageSize: usize, bitmapPtr: usize, firstBit: usize, simd: bool): u32 {
  let end = ptr + len;
  let bit = firstBit;
  let lo = <u32>(bit & 7);
  let acc: u32 = 0;
  let count: u32 = 0;
  let nz: u32 = 1;
  for (let p = ptr; p < end; p += pageSize) {
    let sample = nz != 0;
    nz = <u32>!(simd ? pageIsZeroSimd(p, pageSize, sample) : pageIsZeroScalar(p, pageSize, sample));
    count += nz;
    acc |= nz << <u32>(bit & 7);
    bit++;
    if ((bit & 7) == 0) {
      flushByte(bitmapPtr + ((bit - 1) >>> 3), lo, 8, acc);
      lo = 0;
      acc = 0;
    }
  }
  let hi = <u32>(bit & 7);
  if (hi > lo) flushByte(bitmapPtr + (bit >>> 3), lo, hi, acc);
  return count;
}

/**
 * Classify the pages of [ptr, ptr+len) (len a multiple of pageSize, a power of two >= 64),
 * writing bit (firstBit + i) of the bitmap at bitmapPtr for page i. Returns the non-zero page count.
 */
export function scanSimd(ptr: usize, len: usize, pageSize: usize, bitmapPtr: usize, firstBit: usize): u32 {
  return scan(ptr, len, pageSize, bitmapPtr, firstBit, true);
}

/** Same contract as scanSimd using only u64 loads. */
export function scanScalar(ptr: usize, len: usize, pageSize: usize, bitmapPtr: usize, firstBit: usize): u32 {
  return scan(ptr, len, pageSize, bitmapPtr, firstBit, false);
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
