// The bit-run module against a bit-by-bit reference: runs in any range, spans, index runs, setBits.
import { describe, expect, it } from 'vitest';
import { getBit, indexRuns, runsIn, setBit, setBits, setSpan, type PageRun } from '../../src/kernel/bit-runs.js';
import { mulberry32 } from '../support/random.js';

function refRuns(bits: boolean[], from: number, to: number, value: boolean): PageRun[] {
  const runs: PageRun[] = [];
  for (let p = from; p < to; p++) {
    if (bits[p] !== value) continue;
    const last = runs[runs.length - 1];
    if (last && last.start + last.count === p) last.count++;
    else runs.push({ start: p, count: 1 });
  }
  return runs;
}

function randomBits(rand: () => number, n: number): { bits: boolean[]; bitmap: Uint8Array } {
  // Long uniform stretches (whole 0x00/0xff bytes) mixed with noise, as real bitmaps have.
  const bits: boolean[] = [];
  let v = false;
  while (bits.length < n) {
    const len = rand() < 0.5 ? 1 + Math.floor(rand() * 3) : 1 + Math.floor(rand() * 70);
    for (let i = 0; i < len && bits.length < n; i++) bits.push(v);
    v = !v;
  }
  const bitmap = new Uint8Array(Math.ceil(n / 8));
  bits.forEach((b, i) => setBit(bitmap, i, b ? 1 : 0));
  return { bits, bitmap };
}

describe('bit runs', () => {
  it('runsIn and setSpan match the reference on random ranges, both values', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rand = mulberry32(seed);
      const n = 1 + Math.floor(rand() * 600);
      const { bits, bitmap } = randomBits(rand, n);
      for (let k = 0; k < 30; k++) {
        const from = Math.floor(rand() * n);
        const to = from + Math.floor(rand() * (n - from + 1));
        for (const value of [true, false]) expect([...runsIn(bitmap, from, to, value)], `seed ${seed} [${from}, ${to}) ${value}`).toEqual(refRuns(bits, from, to, value));
        const set = refRuns(bits, from, to, true);
        const last = set[set.length - 1];
        expect(setSpan(bitmap, from, to)).toEqual(last ? { lo: set[0]!.start, hi: last.start + last.count } : null);
      }
    }
  });

  it('setBits sets exactly the range, whole bytes or not', () => {
    for (const [start, count] of [[0, 0], [3, 2], [5, 19], [8, 16], [1, 62], [0, 64]] as const) {
      const bitmap = new Uint8Array(8);
      setBits(bitmap, start, count);
      for (let p = 0; p < 64; p++) expect(getBit(bitmap, p), `${start}+${count} bit ${p}`).toBe(p >= start && p < start + count ? 1 : 0);
    }
  });

  it('indexRuns groups consecutive page numbers', () => {
    expect([...indexRuns([])]).toEqual([]);
    expect([...indexRuns([0, 1, 2, 5, 7, 8])]).toEqual([
      { start: 0, count: 3 },
      { start: 5, count: 1 },
      { start: 7, count: 2 },
    ]);
  });
});
