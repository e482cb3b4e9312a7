// The page-classification loop shared by the production kernel (index.ts: scanSimd) and the
// bench-only kernel (bench.ts: scanScalar). Not an entry: it compiles into whichever entry inlines it.

// Like QEMU's buffer_is_zero: sample first/middle/last word so typical non-zero
// pages are rejected after touching at most three cache lines. `first` is the page's first word,
// loaded ahead by scan(). The out-of-order middle/last loads break the sequential stream the
// prefetcher follows (~15% at RAM speed), so scan() only samples right after a non-zero page;
// zero pages come in long runs. Without `sample`, only the (already loaded) first word is tested.
@inline function sampledNonZero(p: usize, n: usize, first: u64, sample: bool): bool {
  let s = first;
  if (sample) s |= load<u64>(p + (n >>> 1)) | load<u64>(p + n - 8);
  return s != 0;
}

// n is a power of two >= 64: either exactly 64 or a multiple of 128.
@inline function pageIsZeroSimd(p: usize, n: usize, first: u64, sample: bool): bool {
  if (sampledNonZero(p, n, first, sample)) return false;
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
@inline function pageIsZeroScalar(p: usize, n: usize, first: u64, sample: bool): bool {
  if (sampledNonZero(p, n, first, sample)) return false;
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

// Shared bitmap-writing loop; `simd` is a compile-time constant after inlining.
//
// Touch-ahead: while page i is scanned, the first word of page i + 2 is loaded (wasm has no
// prefetch instruction, so it is a plain load whose value is used later as that page's first-word
// test). At RAM speed every 4 KiB boundary otherwise costs a TLB walk plus a full-latency miss
// before the hardware prefetcher, which does not cross 4 KiB pages, picks the new page up
// (+10-28% at 1 GiB of zero pages; measurements in bench/FINDINGS.md, "## Zero-page scan").
// One to four pages ahead all gain about as much on all-zero memory; two was best at 1/7 density.
// The loads are clamped to the region's last word; a clamped value is never used (page i + 2
// does not exist then).
//
// Bitmap bytes are written whole, 8 pages at a time, where the range covers the whole byte; only a
// leading partial byte and the tail go page by page (read-modify-write, preserving bits outside
// the range). Fewer live values per page than carrying a partial byte through every iteration: TurboFan
// spills less, +7% on cache-resident data when every page is non-zero (the loop is all bookkeeping).
@inline export function scan(ptr: usize, len: usize, pageSize: usize, bitmapPtr: usize, firstBit: usize, simd: bool): u32 {
  if (len == 0) return 0; // nothing to classify, and nothing to load ahead from
  let end = ptr + len;
  let bit = firstBit;
  let count: u32 = 0;
  let nz: u32 = 1; // previous page non-zero: sample this one (the first page is always sampled)
  let f0 = load<u64>(ptr); // first word of page i
  let f1 = load<u64>(min(ptr + pageSize, end - 8)); // first word of page i + 1
  let p = ptr;
  while (p < end) {
    if ((bit & 7) == 0 && end - p >= pageSize << 3) {
      let b: u32 = 0;
      if (end - p >= pageSize * 10) {
        // Page i + 2 of every page of this byte lies inside the range: no clamp on the load ahead.
        for (let k: u32 = 0; k < 8; k++) {
          let first = f0;
          f0 = f1;
          f1 = load<u64>(p + 2 * pageSize);
          nz = <u32>!(simd ? pageIsZeroSimd(p, pageSize, first, nz != 0) : pageIsZeroScalar(p, pageSize, first, nz != 0));
          b |= nz << k;
          p += pageSize;
        }
      } else {
        for (let k: u32 = 0; k < 8; k++) {
          let first = f0;
          f0 = f1;
          f1 = load<u64>(min(p + 2 * pageSize, end - 8));
          nz = <u32>!(simd ? pageIsZeroSimd(p, pageSize, first, nz != 0) : pageIsZeroScalar(p, pageSize, first, nz != 0));
          b |= nz << k;
          p += pageSize;
        }
      }
      store<u8>(bitmapPtr + (bit >>> 3), b);
      count += <u32>popcnt(b);
      bit += 8;
    } else {
      let first = f0;
      f0 = f1;
      f1 = load<u64>(min(p + 2 * pageSize, end - 8));
      nz = <u32>!(simd ? pageIsZeroSimd(p, pageSize, first, nz != 0) : pageIsZeroScalar(p, pageSize, first, nz != 0));
      let at = bitmapPtr + (bit >>> 3);
      let m = <u32>1 << <u32>(bit & 7);
      store<u8>(at, (<u32>load<u8>(at) & ~m) | (nz != 0 ? m : 0));
      count += nz;
      bit++;
      p += pageSize;
    }
  }
  return count;
}
