import { Arena, bitmapBytes, checkPageSize, type ScanResult } from './arena.js';

export { bitmapBytes };

/** A run of consecutive pages: first page index and page count. */
export interface PageRun {
  start: number;
  count: number;
}

// Pages per span checked at once (64 KiB of 4 KiB pages: its lines are still in L1/L2 for the samples).
const SPAN_PAGES = 16;
// One zero page of the largest page size compared against: a constant, written once so it is
// resident (memcmp against the kernel's shared zero page measured slower), never written again.
const ZERO_PAGE = new Uint8Array(65536).fill(1).fill(0);

let defaultArena: Arena | undefined;

/** The lazily created module-level arena (kept for callers that staged through it). */
export function sharedArena(): Arena {
  defaultArena ??= new Arena();
  return defaultArena;
}

/**
 * Build the mapped-ram bitmap of `data` (length a multiple of pageSize). Views into an arena's
 * memory are scanned in place by the wasm kernel. Anything else is not copied: each span of pages
 * is tested all-zero by native memcmp (allZero); in a span that differs, each page's first, middle
 * and last byte are sampled (a non-zero sample settles the page) and the pages left are compared
 * run by run.
 */
export function scanPages(data: Uint8Array, pageSize = 4096): ScanResult {
  checkPageSize(pageSize);
  if (data.byteLength % pageSize !== 0) {
    throw new RangeError(`length ${data.byteLength} is not a multiple of the page size ${pageSize}`);
  }
  const owner = Arena.of(data);
  if (owner) return owner.scan(data, pageSize);
  const pages = data.byteLength / pageSize;
  const bitmap = new Uint8Array(bitmapBytes(pages));
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const zero = pageSize <= ZERO_PAGE.length ? Buffer.from(ZERO_PAGE.buffer, 0, pageSize) : Buffer.alloc(pageSize);
  let nonZeroPages = 0;
  for (let s = 0; s < pages; s += SPAN_PAGES) {
    const e = Math.min(s + SPAN_PAGES, pages);
    // All-zero spans (the bulk of a sparse guest) cost two memcmps and nothing else.
    if (allZero(buf, zero, s, e, pageSize)) continue;
    nonZeroPages += scanSpan(buf, zero, bitmap, s, e, pageSize);
  }
  return { bitmap, nonZeroPages };
}

/**
 * Marks and counts the non-zero pages of span [s, e), front to back: a page whose first, middle or
 * last byte is non-zero is settled by that sample; consecutive pages whose samples are zero are
 * tested all-zero once per run (allZero) (page by page only inside a run that differs).
 */
function scanSpan(buf: Buffer, zero: Buffer, bitmap: Uint8Array, s: number, e: number, pageSize: number): number {
  let found = 0;
  let run = s;
  const flush = (end: number) => {
    if (end > run && !allZero(buf, zero, run, end, pageSize)) {
      for (let p = run; p < end; p++) if (buf.compare(zero, 0, pageSize, p * pageSize, (p + 1) * pageSize) !== 0) found += mark(bitmap, p);
    }
  };
  for (let p = s, o = s * pageSize; p < e; p++, o += pageSize) {
    if ((buf[o]! | buf[o + (pageSize >>> 1)]! | buf[o + pageSize - 1]!) === 0) continue;
    flush(p);
    found += mark(bitmap, p);
    run = p + 1;
  }
  flush(e);
  return found;
}

/**
 * Whether pages [a, b) are all zero: the first against a zero page, then the run against itself one
 * page on (each page equals the one before). The second operand is the line just read, so the data
 * streams from memory once while the partner stays in L1 (a 64 KiB zero buffer measured 1.08× of
 * per-page Buffer.equals at 512 MiB, this 1.64×).
 */
function allZero(buf: Buffer, zero: Buffer, a: number, b: number, pageSize: number): boolean {
  const o = a * pageSize;
  if (buf.compare(zero, 0, pageSize, o, o + pageSize) !== 0) return false;
  return b - a === 1 || buf.compare(buf, o, b * pageSize - pageSize, o + pageSize, b * pageSize) === 0;
}

function mark(bitmap: Uint8Array, p: number): 1 {
  bitmap[p >>> 3] = bitmap[p >>> 3]! | (1 << (p & 7));
  return 1;
}

/** Maximal runs of all-zero pages of `data`, in page order. */
export function zeroRuns(data: Uint8Array, pageSize = 4096): PageRun[] {
  const owner = Arena.of(data);
  if (owner) return owner.zeroRuns(data, pageSize);
  return bitRuns(scanPages(data, pageSize).bitmap, data.byteLength / pageSize, false);
}

/** Number of set bits among the first `pages` bits of a bitmap (pages present in the file). */
export function countPresent(bitmap: Uint8Array, pages: number): number {
  checkBits(bitmap, pages);
  let n = 0;
  const whole = Math.floor(pages / 8);
  let i = 0;
  // 32 bits at a time (SWAR popcount); a 64 GiB guest has a 2 MiB bitmap, counted on every open.
  if (bitmap.byteOffset % 4 === 0) {
    const words = new Uint32Array(bitmap.buffer, bitmap.byteOffset, whole >>> 2);
    for (let w = 0; w < words.length; w++) {
      let v = words[w]!;
      if (v === 0) continue;
      v -= (v >>> 1) & 0x55555555;
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      n += Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
    }
    i = words.length * 4;
  }
  for (; i < whole; i++) n += POPCOUNT8[bitmap[i]!]!;
  if (pages & 7) n += POPCOUNT8[bitmap[whole]! & ((1 << (pages & 7)) - 1)]!;
  return n;
}

/** Maximal runs of set bits among the first `pages` bits: the page ranges present in the file. */
export function presentRuns(bitmap: Uint8Array, pages: number): PageRun[] {
  return bitRuns(bitmap, pages, true);
}

/** Maximal runs of bits equal to `value` among the first `pages` bits of `bitmap`. */
export function bitRuns(bitmap: Uint8Array, pages: number, value: boolean): PageRun[] {
  checkBits(bitmap, pages);
  const flip = value ? 0 : 0xff;
  const runs: PageRun[] = [];
  let start = -1;
  for (let byte = 0, base = 0; base < pages; byte++, base += 8) {
    const b = bitmap[byte]! ^ flip;
    // Uniform bytes (the common case) extend or end a run without a per-bit loop.
    if (b === 0xff && start >= 0) continue;
    if (b === 0 && start < 0) continue;
    const top = Math.min(8, pages - base);
    for (let k = 0; k < top; k++) {
      const hit = (b >> k) & 1;
      if (hit && start < 0) start = base + k;
      else if (!hit && start >= 0) {
        runs.push({ start, count: base + k - start });
        start = -1;
      }
    }
  }
  if (start >= 0) runs.push({ start, count: pages - start });
  return runs;
}

function checkBits(bitmap: Uint8Array, pages: number): void {
  if (!Number.isInteger(pages) || pages < 0 || pages > bitmap.length * 8) {
    throw new RangeError(`bitmap of ${bitmap.length} bytes cannot hold ${pages} pages`);
  }
}

const POPCOUNT8 = Uint8Array.from({ length: 256 }, (_, i) => {
  let n = 0;
  for (let x = i; x; x &= x - 1) n++;
  return n;
});
