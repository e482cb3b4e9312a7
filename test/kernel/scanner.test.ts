import { describe, expect, it, vi } from 'vitest';
import { Arena, bitmapBytes, bitRuns, countPresent, presentRuns, scanPages, zeroRuns } from '../../src/kernel/index.js';
import { mulberry32 } from '../support/random.js';
// The debug kernel (assertions on, through @assemblyscript/loader): a kernel bounds violation names its assembly/*.ts line.
vi.mock('../../src/kernel/wasm.js', (original) => import('../support/debug-kernel.js').then((m) => m.withDebugKernel(original)));

// Reference: byte-by-byte, QEMU bitmap layout (page i -> byte i>>3, bit i&7).
function refBitmap(data: Uint8Array, pageSize: number): { bitmap: Uint8Array; nonZeroPages: number } {
  const pages = data.length / pageSize;
  const bitmap = new Uint8Array(Math.ceil(pages / 64) * 8);
  let nonZeroPages = 0;
  for (let p = 0; p < pages; p++) {
    let nz = false;
    for (let i = p * pageSize; i < (p + 1) * pageSize; i++) if (data[i] !== 0) nz = true;
    if (nz) {
      bitmap[p >> 3]! |= 1 << (p & 7);
      nonZeroPages++;
    }
  }
  return { bitmap, nonZeroPages };
}

function refRuns(bits: boolean[], value: boolean): Array<{ start: number; count: number }> {
  const runs: Array<{ start: number; count: number }> = [];
  for (let i = 0; i < bits.length; i++) {
    if (bits[i] !== value) continue;
    const last = runs[runs.length - 1];
    if (last && last.start + last.count === i) last.count++;
    else runs.push({ start: i, count: 1 });
  }
  return runs;
}

function bitsOf(bitmap: Uint8Array, n: number): boolean[] {
  return Array.from({ length: n }, (_, i) => ((bitmap[i >> 3]! >> (i & 7)) & 1) === 1);
}

// Pages are zero, sparse (a few random bytes), or dense with the given probabilities.
function randomPages(rand: () => number, pages: number, pageSize: number, zeroShare = 0.5): Uint8Array {
  const data = new Uint8Array(pages * pageSize);
  for (let p = 0; p < pages; p++) {
    const r = rand();
    if (r < zeroShare) continue;
    const base = p * pageSize;
    if (r < zeroShare + (1 - zeroShare) / 2) {
      const k = 1 + Math.floor(rand() * 3);
      for (let j = 0; j < k; j++) data[base + Math.floor(rand() * pageSize)] = 1 + Math.floor(rand() * 255);
    } else {
      for (let i = 0; i < pageSize; i++) data[base + i] = Math.floor(rand() * 256);
    }
  }
  return data;
}

const arena = new Arena({ bytes: 16 << 20 });

describe('scanPages', () => {
  for (const pageSize of [4096, 16384, 65536]) {
    it(`matches the reference on random data, page size ${pageSize}`, () => {
      const rand = mulberry32(pageSize);
      for (const pages of [1, 7, 63, 64, 65, 130, 203]) {
        const data = randomPages(rand, pages, pageSize);
        const got = scanPages(data, pageSize);
        const want = refBitmap(data, pageSize);
        expect(got.bitmap.length).toBe(bitmapBytes(pages));
        expect(got.nonZeroPages).toBe(want.nonZeroPages);
        expect(got.bitmap).toEqual(want.bitmap);
      }
    });
  }

  it('finds a single non-zero byte at any position of a page', () => {
    for (const pageSize of [64, 128, 4096, 65536]) {
      const positions = new Set([0, 1, 7, 8, 15, 16, 63, pageSize / 2 - 1, pageSize / 2, pageSize - 9, pageSize - 8, pageSize - 1]);
      if (pageSize <= 128) for (let i = 0; i < pageSize; i++) positions.add(i);
      for (const pos of positions) {
        // Three pages: the byte sits in the middle one, the neighbours stay zero.
        const data = new Uint8Array(3 * pageSize);
        data[pageSize + pos] = 0x80;
        const got = scanPages(data, pageSize);
        expect(got.nonZeroPages, `page ${pageSize} byte ${pos}`).toBe(1);
        expect(Array.from(got.bitmap)).toEqual([0b010, 0, 0, 0, 0, 0, 0, 0]);
      }
    }
  });

  it('handles all-zero and all-dense inputs', () => {
    for (const pages of [1, 64, 100, 1000]) {
      const zero = scanPages(new Uint8Array(pages * 4096));
      expect(zero.nonZeroPages).toBe(0);
      expect(zero.bitmap.every((b) => b === 0)).toBe(true);
      const dense = scanPages(new Uint8Array(pages * 4096).fill(0xff));
      expect(dense.nonZeroPages).toBe(pages);
      expect(countPresent(dense.bitmap, pages)).toBe(pages);
      // Trailing bits past the last page stay zero, as in QEMU's bitmap.
      expect(dense.bitmap).toEqual(refBitmap(new Uint8Array(pages * 4096).fill(1), 4096).bitmap);
    }
  });

  it('scans a caller buffer of many spans, at an odd byte offset', () => {
    const rand = mulberry32(7);
    const data = randomPages(rand, 1000, 4096, 0.6); // ~4 MiB: many 16-page spans
    expect(scanPages(data)).toEqual(refBitmap(data, 4096));
    const odd = new Uint8Array(data.length + 1).subarray(1);
    odd.set(data);
    expect(scanPages(odd)).toEqual(refBitmap(data, 4096));
  });

  it('caller buffer: pages settled by their samples next to pages non-zero only where no sample looks', () => {
    const pageSize = 4096;
    const data = new Uint8Array(40 * pageSize);
    const sampled = [1, 5, 17, 18, 33];
    const hidden = [2, 6, 16, 19, 20, 39];
    for (const p of sampled) data[p * pageSize + pageSize - 1] = 1;
    for (const p of hidden) data[p * pageSize + 1000 + p] = 0x10;
    const got = scanPages(data, pageSize);
    expect(got).toEqual(refBitmap(data, pageSize));
    expect(got.nonZeroPages).toBe(sampled.length + hidden.length);
  });

  it('caller buffer of 256 MiB: mixed, dense and all-zero spans, and a short last span', () => {
    // Three pages more than 256 MiB leave a short last span (and, at 64 KiB pages, spans starting at bit 4).
    for (const pageSize of [4096, 65536]) {
      const pages = (256 << 20) / pageSize + 3;
      const data = new Uint8Array(pages * pageSize);
      const rand = mulberry32(pageSize + 1);
      const want = new Set<number>();
      const set = (p: number, at: number, v: number) => {
        data[p * pageSize + at] = v;
        want.add(p);
      };
      // Random bytes anywhere in the first half (mixed spans), a dense stretch, the last page; the rest stays zero.
      for (let i = 0; i < 3000; i++) set(Math.floor((rand() * pages) / 2), Math.floor(rand() * pageSize), 1 + Math.floor(rand() * 255));
      for (let p = pages - 400; p < pages - 100; p++) set(p, pageSize - 1, 7);
      set(pages - 1, 5, 1);
      const bitmap = new Uint8Array(bitmapBytes(pages));
      for (const p of want) bitmap[p >> 3]! |= 1 << (p & 7);
      const got = scanPages(data, pageSize);
      expect(got.nonZeroPages).toBe(want.size);
      expect(got.bitmap).toEqual(bitmap);
    }
  });

  it('scans arena regions in place and agrees with the copying path', () => {
    const rand = mulberry32(11);
    const region = arena.alloc(300 * 4096);
    region.view.set(randomPages(rand, 300, 4096));
    const want = refBitmap(region.view, 4096);
    expect(scanPages(region.view)).toEqual(want);
    expect(arena.scan(region)).toEqual(want);
    expect(scanPages(region.view.slice())).toEqual(want);
    region.free();
  });

  it('rejects bad page sizes and lengths', () => {
    expect(() => scanPages(new Uint8Array(4096), 1000)).toThrow(RangeError);
    expect(() => scanPages(new Uint8Array(4096), 32)).toThrow(RangeError);
    expect(() => scanPages(new Uint8Array(4097))).toThrow(RangeError);
  });
});

describe('chunked scanning at bit offsets', () => {
  const pageSize = 64;
  const pages = 20_000; // > the 8192-page kernel chunk, so the staging loop crosses chunks
  const rand = mulberry32(3);
  const region = arena.alloc(pages * pageSize);
  region.view.set(randomPages(rand, pages, pageSize, 0.4));
  const want = refBitmap(region.view, pageSize);
  const wantBits = bitsOf(want.bitmap, pages);

  for (const inArena of [false, true]) {
    it(`matches one pass and preserves neighbouring bits (bitmap ${inArena ? 'inside' : 'outside'} the arena)`, () => {
      for (const firstBit of [0, 1, 3, 8, 13, 64, 77]) {
        const bytes = bitmapBytes(firstBit + pages);
        const bitmapRegion = inArena ? arena.alloc(bytes) : undefined;
        const bitmap = bitmapRegion ? bitmapRegion.view : new Uint8Array(bytes);
        const noise = Uint8Array.from({ length: bytes }, () => Math.floor(rand() * 256));
        bitmap.set(noise);
        // Uneven chunk sizes, each at its own bit offset inside the same bitmap.
        let done = 0;
        let nonZero = 0;
        for (const n of [1, 5, 9000, 63, 64, 1000, 17]) {
          const view = region.view.subarray(done * pageSize, (done + n) * pageSize);
          nonZero += arena.scan(view, pageSize, bitmap, firstBit + done).nonZeroPages;
          done += n;
        }
        nonZero += arena.scan(region.view.subarray(done * pageSize), pageSize, bitmap, firstBit + done).nonZeroPages;
        expect(nonZero).toBe(want.nonZeroPages);
        for (let i = 0; i < bytes * 8; i++) {
          const got = ((bitmap[i >> 3]! >> (i & 7)) & 1) === 1;
          const expected = i >= firstBit && i < firstBit + pages ? wantBits[i - firstBit] : ((noise[i >> 3]! >> (i & 7)) & 1) === 1;
          if (got !== expected) throw new Error(`firstBit ${firstBit}: bit ${i} is ${got}, expected ${expected}`);
        }
        bitmapRegion?.free();
      }
    });
  }

  // scan() loads each page's first word two pages ahead and tests it when it gets there; these
  // cases hit every slot of that pipeline (first pages, last pages, after zero and non-zero pages).
  it('a page whose only non-zero byte is its first is found at every position (touch-ahead pipeline)', () => {
    const bm = arena.alloc(4096);
    for (const ps of [64, 4096]) {
      const data = arena.alloc(18 * ps);
      // 8 to 17 pages: whole bitmap bytes with the load ahead clamped (fewer than 10 pages left) and
      // without (10 or more), and the switch between the two inside one range.
      for (const pageCount of [1, 2, 3, 4, 8, 9, 10, 11, 16, 17, 18]) {
        for (let mask = 0; mask < 2 ** pageCount; mask += pageCount > 8 ? 997 : pageCount > 4 ? 37 : 1) {
          data.view.fill(0);
          for (let i = 0; i < pageCount; i++) if (mask & (1 << i)) data.view[i * ps] = 1;
          if (pageCount > 8) data.view[(pageCount - 1) * ps] = 1; // the last page, which the mask step may skip
          const want = refBitmap(data.view.subarray(0, pageCount * ps), ps);
          for (const fn of ['scanSimd', 'scanScalar'] as const) {
            bm.view.fill(0);
            const n = arena.kernel[fn](data.ptr, pageCount * ps, ps, bm.ptr, 0);
            expect(n, `${fn} page ${ps} pages ${pageCount} mask ${mask}`).toBe(want.nonZeroPages);
            expect(Array.from(bm.view.subarray(0, want.bitmap.length)), `${fn} ${ps} ${pageCount} ${mask}`).toEqual(Array.from(want.bitmap));
          }
        }
      }
      data.free();
    }
    // An empty range loads nothing (not even at the very end of the memory) and writes nothing.
    const end = arena.memory.buffer.byteLength;
    bm.view.fill(0xa5);
    expect(arena.kernel.scanSimd(end, 0, 4096, bm.ptr, 3)).toBe(0);
    expect(arena.kernel.scanScalar(end, 0, 4096, bm.ptr, 3)).toBe(0);
    expect(bm.view[0]).toBe(0xa5);
    // A range that ends at the very end of the memory: no load ahead may go past it (it would trap).
    for (const ps of [64, 4096]) {
      const pages = 12;
      const mem = new Uint8Array(arena.memory.buffer, end - pages * ps, pages * ps);
      const want = refBitmap(mem, ps);
      for (const fn of ['scanSimd', 'scanScalar'] as const) {
        bm.view.fill(0);
        expect(arena.kernel[fn](end - pages * ps, pages * ps, ps, bm.ptr, 0), `${fn} ${ps} at the end`).toBe(want.nonZeroPages);
        expect(Array.from(bm.view.subarray(0, want.bitmap.length))).toEqual(Array.from(want.bitmap));
      }
    }
    bm.free();
  });

  it('scalar and SIMD kernels agree', () => {
    const a = arena.alloc(bitmapBytes(pages));
    const b = arena.alloc(bitmapBytes(pages));
    a.view.fill(0);
    b.view.fill(0);
    const nA = arena.kernel.scanSimd(region.ptr, pages * pageSize, pageSize, a.ptr, 0);
    const nB = arena.kernel.scanScalar(region.ptr, pages * pageSize, pageSize, b.ptr, 0);
    expect(nA).toBe(want.nonZeroPages);
    expect(nB).toBe(want.nonZeroPages);
    expect(a.view).toEqual(want.bitmap);
    expect(b.view).toEqual(want.bitmap);
    a.free();
    b.free();
  });
});

describe('runs', () => {
  it('zeroRuns matches the reference (copying and in-place paths)', () => {
    const rand = mulberry32(5);
    for (const [pages, pageSize] of [[1, 4096], [77, 4096], [500, 16384], [20_000, 64]] as const) {
      for (const zeroShare of [0, 0.5, 0.9, 1]) {
        const data = randomPages(rand, pages, pageSize, zeroShare);
        const want = refRuns(bitsOf(refBitmap(data, pageSize).bitmap, pages), false);
        expect(zeroRuns(data, pageSize)).toEqual(want);
        const region = arena.alloc(data.length);
        region.view.set(data);
        expect(zeroRuns(region.view, pageSize)).toEqual(want);
        expect(arena.zeroRuns(region, pageSize)).toEqual(want);
        region.free();
      }
    }
  });

  it('a zero run crossing kernel chunks is reported once', () => {
    const region = arena.alloc(20_000 * 64);
    region.view.fill(0);
    region.view[100 * 64] = 1;
    expect(arena.zeroRuns(region, 64)).toEqual([
      { start: 0, count: 100 },
      { start: 101, count: 19_899 },
    ]);
    region.free();
  });

  it('presentRuns, bitRuns and countPresent match the reference', () => {
    const rand = mulberry32(9);
    for (const pages of [0, 1, 8, 9, 64, 65, 1000, 4099]) {
      for (const density of [0, 0.02, 0.5, 0.98, 1]) {
        const bitmap = new Uint8Array(bitmapBytes(pages));
        const bits = Array.from({ length: pages }, () => rand() < density);
        bits.forEach((b, i) => b && (bitmap[i >> 3]! |= 1 << (i & 7)));
        expect(presentRuns(bitmap, pages)).toEqual(refRuns(bits, true));
        expect(bitRuns(bitmap, pages, false)).toEqual(refRuns(bits, false));
        expect(countPresent(bitmap, pages)).toBe(bits.filter(Boolean).length);
      }
    }
  });

  it('ignores bits past `pages`', () => {
    const bitmap = new Uint8Array(8).fill(0xff);
    expect(countPresent(bitmap, 10)).toBe(10);
    expect(presentRuns(bitmap, 10)).toEqual([{ start: 0, count: 10 }]);
    expect(() => countPresent(bitmap, 65)).toThrow(RangeError);
  });
});
