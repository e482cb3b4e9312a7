import { Arena, bitmapBytes, checkPageSize, type ScanResult } from './arena.js';

export { bitmapBytes };

/** A run of consecutive pages: first page index and page count. */
export interface PageRun {
  start: number;
  count: number;
}

// Staging chunk for data outside any arena: big enough to amortise calls, small enough to stay in L2.
const STAGE_BYTES = 1 << 20;

let defaultArena: Arena | undefined;

/** The lazily created module-level arena used by scanPages/zeroRuns for staging copies. */
export function sharedArena(): Arena {
  defaultArena ??= new Arena();
  return defaultArena;
}

/**
 * Build the mapped-ram bitmap of `data` (length a multiple of pageSize). Views into an arena's
 * memory are scanned in place; anything else is copied through the shared arena in 1 MiB chunks.
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
  const arena = sharedArena();
  const stage = arena.alloc(Math.max(STAGE_BYTES, pageSize));
  try {
    let nonZeroPages = 0;
    for (let off = 0; off < data.byteLength; off += stage.byteLength) {
      const chunk = data.subarray(off, off + stage.byteLength);
      stage.view.set(chunk);
      nonZeroPages += arena.scan(stage.view.subarray(0, chunk.byteLength), pageSize, bitmap, off / pageSize).nonZeroPages;
    }
    return { bitmap, nonZeroPages };
  } finally {
    stage.free();
  }
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
