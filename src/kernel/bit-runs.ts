// Bit-per-page maps in QEMU's layout (page i = byte i>>3, bit i&7): single bits, counts and runs.
// The one place runs of set or clear bits are found, for the kernel wrappers, the stager, the
// reader, extract and compare alike.

/** A run of consecutive pages: first page index and page count. */
export interface PageRun {
  start: number;
  count: number;
}

/** Set bits of every byte value. */
export const POPCOUNT8 = Uint8Array.from({ length: 256 }, (_, i) => {
  let n = 0;
  for (let x = i; x; x &= x - 1) n++;
  return n;
});

/** Bit `i` of `bits` (0 or 1). */
export function getBit(bits: Uint8Array, i: number): number {
  return (bits[i >>> 3]! >>> (i & 7)) & 1;
}

/** Sets bit `i` of `bits` to `v` (0 or 1). */
export function setBit(bits: Uint8Array, i: number, v: number): void {
  if (v) bits[i >>> 3]! |= 1 << (i & 7);
  else bits[i >>> 3]! &= ~(1 << (i & 7));
}

/** Sets bits [start, start+count) of a bitmap, whole bytes where it can. */
export function setBits(bits: Uint8Array, start: number, count: number): void {
  let p = start;
  const end = start + count;
  while (p < end && p & 7) setBit(bits, p++, 1);
  if (end - p >= 8) {
    bits.fill(0xff, p >>> 3, end >>> 3);
    p = end - (end % 8);
  }
  while (p < end) setBit(bits, p++, 1);
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

/**
 * Maximal runs of bits equal to `value` among bits [from, to) of `bits`, in order. Uniform bytes
 * (the common case) extend or skip a run without a per-bit step.
 */
export function* runsIn(bits: Uint8Array, from: number, to: number, value = true): Generator<PageRun> {
  const flip = value ? 0 : 0xff;
  let start = -1;
  for (let p = from; p < to; ) {
    if ((p & 7) === 0 && p + 8 <= to) {
      const b = bits[p >>> 3]! ^ flip;
      if ((b === 0xff && start >= 0) || (b === 0 && start < 0)) {
        p += 8;
        continue;
      }
    }
    const hit = getBit(bits, p) ^ (value ? 0 : 1);
    if (hit && start < 0) start = p;
    else if (!hit && start >= 0) {
      yield { start, count: p - start };
      start = -1;
    }
    p++;
  }
  if (start >= 0) yield { start, count: to - start };
}

/** Maximal runs of bits equal to `value` among the first `pages` bits of `bitmap`. */
export function bitRuns(bitmap: Uint8Array, pages: number, value: boolean): PageRun[] {
  checkBits(bitmap, pages);
  return [...runsIn(bitmap, 0, pages, value)];
}

/** Maximal runs of set bits among the first `pages` bits: the page ranges present in the file. */
export function presentRuns(bitmap: Uint8Array, pages: number): PageRun[] {
  return bitRuns(bitmap, pages, true);
}

/** First and one-past-last set bit in [from, to), or null when none is set. */
export function setSpan(bits: Uint8Array, from: number, to: number): { lo: number; hi: number } | null {
  let lo = -1;
  let hi = -1;
  for (const r of runsIn(bits, from, to)) {
    if (lo < 0) lo = r.start;
    hi = r.start + r.count;
  }
  return lo < 0 ? null : { lo, hi };
}

/** Runs of consecutive numbers in an ascending sequence of page indices. */
export function* indexRuns(pages: Iterable<number>): Generator<PageRun> {
  let start = -1;
  let prev = -2;
  for (const p of pages) {
    if (p !== prev + 1) {
      if (start >= 0) yield { start, count: prev - start + 1 };
      start = p;
    }
    prev = p;
  }
  if (start >= 0) yield { start, count: prev - start + 1 };
}

function checkBits(bitmap: Uint8Array, pages: number): void {
  if (!Number.isInteger(pages) || pages < 0 || pages > bitmap.length * 8) {
    throw new RangeError(`bitmap of ${bitmap.length} bytes cannot hold ${pages} pages`);
  }
}

/** Whether any of bits [first, first+pages) is set; `first` is a multiple of 8 (a page-reader chunk). */
export function hasSetBit(bitmap: Uint8Array, first: number, pages: number): boolean {
  const whole = first + pages - ((first + pages) & 7);
  let i = first >>> 3;
  // 32 bits at a time where aligned: a 256 GiB guest's 8 MiB bitmap is tested chunk by chunk.
  if ((bitmap.byteOffset + i) % 4 === 0) {
    const words = new Uint32Array(bitmap.buffer, bitmap.byteOffset + i, (whole / 8 - i) >>> 2);
    for (let w = 0; w < words.length; w++) if (words[w] !== 0) return true;
    i += words.length * 4;
  }
  for (; i < whole >>> 3; i++) if (bitmap[i] !== 0) return true;
  return whole < first + pages && (bitmap[whole >>> 3]! & ((1 << ((first + pages) & 7)) - 1)) !== 0;
}
