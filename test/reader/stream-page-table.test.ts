// A stream block's page table against a model of QEMU's rule (the last record of a page wins), in
// both of its forms: the dense one (a bit per page, data offsets per segment) and the map a file
// too small for it falls back to. No file system: the records are fed as the reader feeds them.
import { describe, expect, it } from 'vitest';
import type { RamBlockEntry } from '../../src/codec/ram.js';
import type { PositionalSource } from '../../src/io/source.js';
import { PageTableBudget, StreamRamBlock } from '../../src/reader/ram-block.js';
import { mulberry32 } from '../support/random.js';

const PAGE = 4096;
const source = (size: number): PositionalSource => ({ path: 'model', size, allocated: size, readInto: async () => 0, close: async () => undefined });
const entry = (pages: number): RamBlockEntry => ({ idstr: 'pc.ram', usedLength: pages * PAGE, entryOffset: 0, blockPageSize: null, mrAddr: null, mappedRam: null });

/** The block and the model after the same records: page → data offset, or null for a ZERO record. */
function feed(pages: number, fileSize: number, records: Array<[number, number | null]>) {
  const block = new StreamRamBlock(source(fileSize), entry(pages), PAGE, new PageTableBudget(fileSize));
  const model = new Map<number, number | null>();
  const seen = new Map<number, number>();
  for (const [page, offset] of records) {
    block.record(page, offset);
    model.set(page, offset);
    seen.set(page, (seen.get(page) ?? 0) + 1);
  }
  return { block, model, seen };
}

function randomRecords(seed: number, pages: number, n: number): Array<[number, number | null]> {
  const rnd = mulberry32(seed);
  // Clustered pages (a live save re-sends the pages it dirtied) and scattered ones.
  return Array.from({ length: n }, (_, i): [number, number | null] => {
    const page = rnd() < 0.5 ? Math.floor(rnd() * 64) : Math.floor(rnd() * pages);
    return [page, rnd() < 0.4 ? null : 4096 + i * PAGE];
  });
}

describe('stream page table', () => {
  for (const [form, fileSize] of [['dense', 1 << 30], ['map (file too small for the dense table)', 1]] as const) {
    it(`${form}: present pages, offsets, runs and re-sent pages follow the last record of each page`, () => {
      const pages = 3000;
      const { block, model, seen } = feed(pages, fileSize, randomRecords(7, pages, 5000));
      const present = [...model].filter(([, o]) => o !== null).map(([p]) => p).sort((a, b) => a - b);
      expect(block.presentPages).toBe(present.length);
      expect(block.resentPages).toBe([...seen.values()].filter((n) => n > 1).length);
      for (let p = 0; p < pages; p++) {
        expect(block.pageOffset(p)).toBe(model.get(p) ?? null);
        expect(block.wasResent(p)).toBe((seen.get(p) ?? 0) > 1);
      }
      expect([...block.presentRuns()].flatMap((r) => Array.from({ length: r.count }, (_, i) => r.start + i))).toEqual(present);
    });
  }

  it('a data page then a ZERO record of it leaves the page absent, and a later data record brings it back', () => {
    const { block } = feed(1024, 1 << 30, [[600, 8192], [600, null]]);
    expect(block.isPresent(600)).toBe(false);
    expect(block.presentPages).toBe(0);
    block.record(600, 12288);
    expect(block.pageOffset(600)).toBe(12288);
    expect([...block.presentRuns()]).toEqual([{ start: 600, count: 1 }]);
  });

  it('ZERO records alone (a mostly empty guest) allocate no offsets, only a bit a page', () => {
    const pages = 1 << 20;
    const records = Array.from({ length: pages }, (_, p): [number, number | null] => [p, null]);
    const { block } = feed(pages, 1 << 30, [...records, [123_456, 4096]]);
    const segments = (block as unknown as { segments: Array<Float64Array | undefined> }).segments;
    const allocated = segments.filter(Boolean) as Float64Array[];
    // One data page: one segment, a tiny fraction of the 8 MiB a full table of the block would take.
    expect(allocated.length).toBe(1);
    expect(allocated[0]!.byteLength * allocated.length).toBeLessThan((pages * 8) / 1000);
    expect(block.presentPages).toBe(1);
    expect([...block.presentRuns()]).toEqual([{ start: 123_456, count: 1 }]);
  });
});
