// mram kernel: staging a plain stream's page records straight from the input buffer.
//
// The converter's input is read into the same linear memory as its page-area extents, so a run of
// CONTINUE PAGE/ZERO records (8-byte big-endian address|flags, then the page or a fill byte) is
// copied into its slot and classified in one pass, with no JavaScript per page.
// Anything unusual stops the run: the TypeScript record walker then decodes it with full checks.

import { bitmapSpan, inMemory } from './bounds';

const FLAG_ZERO: u32 = 0x02;
const FLAG_PAGE: u32 = 0x08;
const FLAG_CONTINUE: u32 = 0x20;

@inline function setBit(bitmap: usize, i: usize, v: bool): void {
  let at = bitmap + (i >>> 3);
  let m = <u32>1 << <u32>(i & 7);
  let b = <u32>load<u8>(at);
  store<u8>(at, v ? b | m : b & ~m);
}

// Copies one page (n a multiple of 64) and tells whether it has a non-zero byte.
@inline function copyPage(dst: usize, src: usize, n: usize): bool {
  let acc = i64x2.splat(0);
  for (let off: usize = 0; off < n; off += 64) {
    let a = v128.load(src + off);
    let b = v128.load(src + off, 16);
    let c = v128.load(src + off, 32);
    let d = v128.load(src + off, 48);
    v128.store(dst + off, a);
    v128.store(dst + off, b, 16);
    v128.store(dst + off, c, 32);
    v128.store(dst + off, d, 48);
    acc = v128.or(acc, v128.or(v128.or(a, b), v128.or(c, d)));
  }
  return v128.any_true(acc);
}

/**
 * Consumes the CONTINUE PAGE and ZERO (fill 0) records at the front of [src, src+srcLen) whose
 * page lies in an extent: pages [extentAddr / pageSize, + limitPages) of the current block, with
 * slot i at dst + i*pageSize. Sets bit i of `touched` for every page seen; bit i of `staged` is set
 * iff the page's last copy is non-zero (zero pages and ZERO records clear it).
 * Stops before the first record that is incomplete, of another kind, or outside the extent.
 * pageSize = 1 << pageShift, a multiple of 64. Returns the bytes consumed.
 */
export function stagePageRecords(
  src: usize,
  srcLen: u32,
  pageShift: u32,
  extentAddr: f64,
  limitPages: u32,
  dst: usize,
  staged: usize,
  touched: usize,
): u32 {
  assert(pageShift >= 6 && pageShift < 32, 'stagePageRecords: page shift outside [6, 32)');
  assert(inMemory(src, srcLen), 'stagePageRecords: input past the end of memory');
  assert(inMemory(dst, <u64>limitPages << pageShift), 'stagePageRecords: extent past the end of memory');
  assert(inMemory(staged, bitmapSpan(0, limitPages)) && inMemory(touched, bitmapSpan(0, limitPages)), 'stagePageRecords: bitmaps past the end of memory');
  let ps = <usize>1 << pageShift;
  let mask = <u32>ps - 1;
  let first = <u64>extentAddr;
  let p = src;
  let end = src + srcLen;
  while (end - p >= 9) {
    let hi = bswap<u32>(load<u32>(p));
    let lo = bswap<u32>(load<u32>(p, 4));
    let flags = lo & mask;
    let addr = (<u64>hi << 32) | <u64>(lo & ~mask);
    if (addr < first) break;
    let rel = (addr - first) >> pageShift;
    if (rel >= <u64>limitPages) break;
    let slot = <usize>rel;
    if (flags == (FLAG_ZERO | FLAG_CONTINUE)) {
      if (load<u8>(p, 8) != 0) break;
      setBit(staged, slot, false);
      p += 9;
    } else if (flags == (FLAG_PAGE | FLAG_CONTINUE)) {
      if (end - p < 8 + ps) break;
      setBit(staged, slot, copyPage(dst + (slot << pageShift), p + 8, ps));
      p += 8 + ps;
    } else break;
    setBit(touched, slot, true);
  }
  return <u32>(p - src);
}
