// The in-place record path (wasm kernel `stagePageRecords`) against a model of the stream's meaning:
// last copy of a page wins, ZERO records and all-zero pages clear its bit, and every record the
// kernel declines is taken by the per-record path, as `readRecords` does.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RamFlag } from '../../src/format/constants.js';
import { PageAreaFile } from '../../src/io/direct-writer.js';
import { Arena } from '../../src/kernel/arena.js';
import { placeBlock } from '../../src/writer/layout.js';
import { PageStager } from '../../src/writer/page-stager.js';
import { makeTempDir } from '../support/qemu.js';
import { lcg } from '../support/random.js';

const dir = makeTempDir('mram-stage-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const PAGES = 40;
/** Small extents: records cross extent boundaries often. */
const EXTENT_PAGES = 16;

interface Rec {
  page: number;
  /** Page bytes, or a ZERO record's fill byte. */
  data: Uint8Array | number;
  cont: boolean;
}

function makeRecords(rnd: () => number, n: number, PS: number): Rec[] {
  const recs: Rec[] = [];
  let page = 0;
  for (let i = 0; i < n; i++) {
    // Mostly sequential, sometimes a jump (a re-sent page of a later iteration).
    page = rnd() % 5 === 0 ? rnd() % PAGES : (page + 1) % PAGES;
    const kind = rnd() % 10;
    let data: Uint8Array | number;
    if (kind < 2) data = 0;
    else if (kind === 2) data = 1 + (rnd() % 255); // ZERO with a fill byte: data, per-record path
    else {
      const b = new Uint8Array(PS);
      if (kind === 3) b[PS - 1] = 1 + (rnd() % 255);
      else if (kind === 4) b[0] = 7;
      else if (kind > 5) for (let k = 0; k < PS; k += 512) b[k + (rnd() % 512)] = rnd() & 0xff;
      data = b; // kind 5: an all-zero PAGE record
    }
    recs.push({ page, data, cont: i > 0 && rnd() % 17 !== 0 });
  }
  return recs;
}

function encode(recs: Rec[], idstr: string, PS: number): Uint8Array {
  const parts: number[] = [];
  for (const r of recs) {
    const flags = (typeof r.data === 'number' ? RamFlag.ZERO : RamFlag.PAGE) | (r.cont ? RamFlag.CONTINUE : 0);
    const word = BigInt(r.page * PS) | BigInt(flags);
    for (let k = 7; k >= 0; k--) parts.push(Number((word >> BigInt(8 * k)) & 0xffn));
    if (!r.cont) parts.push(idstr.length, ...Buffer.from(idstr));
    if (typeof r.data === 'number') parts.push(r.data);
    else parts.push(...r.data);
  }
  return Uint8Array.from(parts);
}

describe('in-place staging of page records', () => {
  for (const [seed, PS] of [[1, 4096], [2, 4096], [3, 4096], [4, 4096], [5, 16384], [6, 65536]] as const) {
    it(`matches the model of the stream, seed ${seed}, ${PS / 1024} KiB pages`, async () => {
      const EXTENT = EXTENT_PAGES * PS;
      const rnd = lcg(seed);
      const recs = makeRecords(rnd, 300, PS);
      const out = path.join(dir, `stage-${seed}`);
      fs.writeFileSync(out, '');
      const file = await PageAreaFile.open(out, 'auto', () => undefined);
      const layout = placeBlock({ id: 'pc.ram', usedLength: PAGES * PS, pageSize: PS }, 100);
      const opts = { extentBytes: EXTENT, maxZeroGap: 2 };
      // The input lives in the stager's arena, as the converter arranges it.
      const stager = new PageStager(file, PS, { ...opts, arena: new Arena({ bytes: PageStager.arenaBytes(opts) + 300 * (PS + 16) + (1 << 20) }) });
      stager.addBlock(layout);
      const bytes = encode(recs, 'pc.ram', PS);
      const input = stager.arena.alloc(bytes.length);
      input.view.set(bytes);

      // The walker's loop: offer the buffered records to the kernel, else decode one in JS.
      let at = 0;
      let inPlace = 0;
      let i = 0;
      const offsets: number[] = [];
      for (let o = 0, k = 0; k < recs.length; k++) {
        offsets.push(o);
        const r = recs[k]!;
        o += 8 + (r.cont ? 0 : 1 + 6) + (typeof r.data === 'number' ? 1 : PS);
      }
      offsets.push(bytes.length);
      while (i < recs.length) {
        const used = recs[i]!.cont ? stager.stageRecords('pc.ram', input.view.subarray(at)) : 0;
        if (used > 0) {
          at += used;
          inPlace += used;
          while (offsets[i]! < at) i++;
          expect(offsets[i]).toBe(at); // whole records only
          continue;
        }
        const r = recs[i]!;
        if (typeof r.data !== 'number') await stager.putPage('pc.ram', r.page, r.data);
        else if (r.data === 0) await stager.zero('pc.ram', r.page);
        else await stager.put('pc.ram', r.page, new Uint8Array(PS).fill(r.data));
        at = offsets[++i]!;
      }
      await stager.drain();
      await file.close();

      // Model: the last record of each page decides.
      const last = new Map<number, Uint8Array>();
      for (const r of recs) last.set(r.page, typeof r.data === 'number' ? new Uint8Array(PS).fill(r.data) : r.data);
      const written = fs.readFileSync(out);
      const bitmap = stager.bitmap('pc.ram');
      let present = 0;
      for (let p = 0; p < PAGES; p++) {
        const want = last.get(p);
        const nonZero = !!want && want.some((b) => b !== 0);
        expect((bitmap[p >> 3]! >> (p & 7)) & 1, `bit of page ${p}`).toBe(nonZero ? 1 : 0);
        if (nonZero) {
          present++;
          const at = layout.pagesOffset + p * PS;
          expect(Buffer.from(written.subarray(at, at + PS)).equals(Buffer.from(want!)), `page ${p}`).toBe(true);
        }
      }
      expect(stager.presentPages).toBe(present);
      // The kernel took the bulk of the records, not the fallback.
      expect(inPlace).toBeGreaterThan(bytes.length / 3);
    });
  }

  it('writes the first staged pages at once, before their extent is full, and the rest of the extent after', async () => {
    const PS = 4096;
    const EXTENT = EXTENT_PAGES * PS;
    const writes: Array<{ position: number; bytes: number[] }> = [];
    // Records the writes (first byte of each page of each run) instead of writing a file.
    const file = {
      writeRuns: async (data: Uint8Array, runs: ReadonlyArray<readonly [number, number]>, position: number) => {
        for (const [start, end] of runs) writes.push({ position: position + start, bytes: Array.from({ length: (end - start) / PS }, (_, k) => data[start + k * PS]!) });
      },
    };
    const stager = new PageStager(file as unknown as PageAreaFile, PS, { extentBytes: EXTENT, arena: new Arena({ bytes: PageStager.arenaBytes({ extentBytes: EXTENT }) + (1 << 20) }) });
    const layout = placeBlock({ id: 'pc.ram', usedLength: PAGES * PS }, 100);
    stager.addBlock(layout);
    const recs = (from: number, n: number) => encode(Array.from({ length: n }, (_, k) => ({ page: from + k, data: new Uint8Array(PS).fill(1 + from + k), cont: true })), 'pc.ram', PS);
    await stager.putPage('pc.ram', 0, new Uint8Array(PS).fill(1)); // opens extent 0 (pages 0-15)
    const input = stager.arena.alloc(8 * (8 + PS));
    input.view.set(recs(1, 3));
    expect(stager.stageRecords('pc.ram', input.view.subarray(0, 3 * (8 + PS)))).toBe(3 * (8 + PS));
    await new Promise((r) => setTimeout(r, 10));
    expect(writes).toEqual([{ position: layout.pagesOffset, bytes: [1, 2, 3, 4] }]);
    // The extent reopens for the pages after (the per-record path), and later pages wait for full extents.
    for (let p = 4; p < 20; p++) await stager.putPage('pc.ram', p, new Uint8Array(PS).fill(1 + p));
    await new Promise((r) => setTimeout(r, 10));
    expect(writes.map((w) => (w.position - layout.pagesOffset) / PS)).toEqual([0, 4]);
    await stager.drain();
    expect(writes.map((w) => [(w.position - layout.pagesOffset) / PS, w.bytes.length])).toEqual([[0, 4], [4, 12], [16, 4]]);
    expect(writes.flatMap((w) => w.bytes)).toEqual(Array.from({ length: 20 }, (_, p) => 1 + p));
  });

  it('declines records outside the open extent, incomplete ones and views outside the arena', async () => {
    const PS = 4096;
    const EXTENT = EXTENT_PAGES * PS;
    const out = path.join(dir, 'decline');
    fs.writeFileSync(out, '');
    const file = await PageAreaFile.open(out, 'auto', () => undefined);
    const stager = new PageStager(file, PS, { extentBytes: EXTENT, arena: new Arena({ bytes: PageStager.arenaBytes({ extentBytes: EXTENT }) + (1 << 20) }) });
    stager.addBlock(placeBlock({ id: 'pc.ram', usedLength: PAGES * PS }, 100));
    await stager.putPage('pc.ram', 0, new Uint8Array(PS).fill(1)); // opens extent 0 (pages 0-15)
    const page = (p: number) => encode([{ page: p, data: new Uint8Array(PS).fill(2), cont: true }], 'pc.ram', PS);
    const region = stager.arena.alloc(2 * (8 + PS));
    region.view.set(page(16));
    expect(stager.stageRecords('pc.ram', region.view)).toBe(0); // next extent
    region.view.set(page(15));
    expect(stager.stageRecords('pc.ram', region.view.subarray(0, 8 + PS - 1))).toBe(0); // truncated
    expect(stager.stageRecords('pc.ram', page(15))).toBe(0); // heap memory: no in-place path
    expect(stager.stageRecords('other', region.view.subarray(0, 8 + PS))).toBe(0); // another block
    expect(stager.stageRecords('pc.ram', region.view.subarray(0, 8 + PS))).toBe(8 + PS);
    await stager.drain();
    await file.close();
  });
});
