import { Arena, bitmapBytes, checkPageSize, type ArenaRegion, type ScanResult } from './arena.js';
import { bitRuns, type PageRun } from './bit-runs.js';
import type { Kernel } from './wasm.js';

export { bitmapBytes };

// Bytes of caller data sampled at once, and the size of the stage a differing span is copied into (L2-resident).
const SPAN_BYTES = 256 << 10;
// From this size on differing spans go through a stage: its fresh arena (~1.3 ms, pages faulted in) pays off only on passes this long.
const STAGE_MIN = 256 << 20;
// One zero page of the largest page size compared against: a constant, written once so it is
// resident (memcmp against the kernel's shared zero page measured slower), never written again.
const ZERO_PAGE = new Uint8Array(65536).fill(1).fill(0);

/**
 * Build the mapped-ram bitmap of `data` (length a multiple of pageSize). Views into an arena's
 * memory are scanned in place by the wasm kernel. Anything else goes span by span (256 KiB): each
 * page's first, middle and last byte are sampled (a non-zero sample settles the page); a span with
 * no sample set is tested all-zero by native memcmp (allZero). A span left undecided is, in a large
 * buffer, copied into an arena stage and scanned by the kernel; otherwise its runs of unsettled
 * pages are compared by memcmp (scanRuns).
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
  const spanPages = Math.max(1, SPAN_BYTES / pageSize);
  const hits = new Uint8Array(spanPages);
  const staged = data.byteLength >= STAGE_MIN && pageSize <= SPAN_BYTES;
  let stage: Stage | undefined;
  let nonZeroPages = 0;
  for (let s = 0; s < pages; s += spanPages) {
    const e = Math.min(s + spanPages, pages);
    // All samples first: independent loads, so their misses overlap (and warm the TLB) before the span streams.
    const settled = sample(buf, hits, s, e, pageSize);
    if (settled === e - s) {
      for (let p = s; p < e; p++) mark(bitmap, p);
      nonZeroPages += settled;
    } else if (settled > 0 || !allZero(buf, zero, s, e, pageSize)) {
      // (An all-zero span, the bulk of a sparse guest, cost only its samples and the two memcmps.)
      if (staged) {
        stage ??= newStage();
        nonZeroPages += scanCopy(stage, data, bitmap, s, e, pageSize);
      } else {
        nonZeroPages += scanRuns(buf, zero, hits, bitmap, s, e, pageSize);
      }
    }
  }
  return { bitmap, nonZeroPages };
}

/** Sets hits[p - s] for each page of [s, e) with a non-zero first, middle or last byte; returns how many. */
function sample(buf: Buffer, hits: Uint8Array, s: number, e: number, pageSize: number): number {
  const mid = pageSize >>> 1;
  const last = pageSize - 1;
  let settled = 0;
  for (let p = s, o = s * pageSize; p < e; p++, o += pageSize) {
    const hit = (buf[o]! | buf[o + mid]! | buf[o + last]!) !== 0 ? 1 : 0;
    hits[p - s] = hit;
    settled += hit;
  }
  return settled;
}

/** A span-sized region of a private arena, its kernel, and bitmap scratch beside it. */
interface Stage {
  kernel: Kernel;
  pages: ArenaRegion;
  bits: ArenaRegion;
}

function newStage(): Stage {
  const arena = new Arena({ bytes: SPAN_BYTES + 4096 });
  return { kernel: arena.kernel, pages: arena.alloc(SPAN_BYTES), bits: arena.alloc(4096) };
}

/**
 * Marks and counts the non-zero pages of span [s, e) by one sequential copy into the stage and one
 * kernel call (not Arena.scan: its checks and bitmap staging cost ~4% a span at 512 MiB).
 */
function scanCopy(stage: Stage, data: Uint8Array, bitmap: Uint8Array, s: number, e: number, pageSize: number): number {
  const { kernel, pages, bits } = stage;
  pages.view.set(data.subarray(s * pageSize, e * pageSize));
  const first = s & 7;
  const bytes = (first + e - s + 7) >>> 3;
  bits.view.fill(0, 0, bytes); // the kernel keeps bits outside the range; they must not carry over into `bitmap`
  const found = kernel.scanSimd(pages.ptr, (e - s) * pageSize, pageSize, bits.ptr, first);
  for (let i = 0, b = s >>> 3; i < bytes; i++, b++) bitmap[b] = bitmap[b]! | bits.view[i]!;
  return found;
}

/**
 * Marks and counts the non-zero pages of span [s, e): the pages settled by their samples, and of each
 * run of unsettled pages those that differ from zero (the run is tested all-zero once, page by page
 * only if it differs).
 */
function scanRuns(buf: Buffer, zero: Buffer, hits: Uint8Array, bitmap: Uint8Array, s: number, e: number, pageSize: number): number {
  let found = 0;
  let run = s;
  for (let p = s; p <= e; p++) {
    if (p < e && hits[p - s] === 0) continue;
    if (p > run && !allZero(buf, zero, run, p, pageSize)) {
      for (let q = run; q < p; q++) if (buf.compare(zero, 0, pageSize, q * pageSize, (q + 1) * pageSize) !== 0) found += mark(bitmap, q);
    }
    if (p < e) found += mark(bitmap, p);
    run = p + 1;
  }
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

