// PageAreaFile's fallback when O_DIRECT is accepted on open but a write is refused (EINVAL).
// No filesystem here does that, so the kernel's own EINVAL for a misaligned buffer stands in
// for it: the probe cannot tell the two apart, and the fallback must handle either.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/format/errors.js';
import { PageAreaFile, SCATTERED_RUN } from '../../src/io/direct-writer.js';
import { Arena } from '../../src/kernel/arena.js';
import { makeTempDir } from '../support/qemu.js';

const dir = makeTempDir('mram-pagearea-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Runs this long go out with O_DIRECT (shorter ones through the page cache).
const RUN = SCATTERED_RUN;

/** A run at an address that is 1 byte off any block boundary: O_DIRECT rejects it. */
function misaligned(fill: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(RUN + 4096), 1, RUN).fill(fill);
}

describe('PageAreaFile: O_DIRECT refused at the first write', () => {
  it('auto: warns once, reopens buffered, and every byte lands', async () => {
    const file = path.join(dir, 'auto');
    fs.writeFileSync(file, '');
    const warnings: string[] = [];
    const f = await PageAreaFile.open(file, 'auto', (m) => warnings.push(m));
    expect(f.direct).toBe(true);
    await f.write(misaligned(7), 2 * RUN);
    await f.write(misaligned(9), 0);
    await f.sync();
    await f.close();
    expect(f.direct).toBe(false);
    expect(warnings).toEqual([expect.stringMatching(/refuses O_DIRECT writes \(EINVAL\); writing pages through the page cache/)]);
    const b = fs.readFileSync(file);
    expect(b.length).toBe(3 * RUN);
    expect(b.subarray(0, RUN).every((x) => x === 9)).toBe(true);
    expect(b.subarray(RUN, 2 * RUN).every((x) => x === 0)).toBe(true);
    expect(b.subarray(2 * RUN).every((x) => x === 7)).toBe(true);
  });

  it('on: the write fails with a usage error naming the file, nothing written', async () => {
    const file = path.join(dir, 'on');
    fs.writeFileSync(file, '');
    const f = await PageAreaFile.open(file, 'on', () => undefined);
    await expect(f.write(misaligned(7), 0)).rejects.toThrow(UsageError);
    await expect(f.write(misaligned(7), 0)).rejects.toThrow(/--direct-io on: the filesystem of .*on refuses O_DIRECT writes/);
    await f.close();
    expect(fs.statSync(file).size).toBe(0);
  });

  it('an aligned arena buffer is written with O_DIRECT (the probe passes, no warning)', async () => {
    const file = path.join(dir, 'aligned');
    fs.writeFileSync(file, '');
    const warnings: string[] = [];
    const f = await PageAreaFile.open(file, 'auto', (m) => warnings.push(m));
    const region = new Arena({ bytes: 1 << 20 }).alloc(RUN);
    region.view.fill(5);
    await f.write(region.view, 4096);
    await f.close();
    expect(f.direct).toBe(true);
    expect(warnings).toEqual([]);
    expect(fs.readFileSync(file).subarray(4096).every((x) => x === 5)).toBe(true);
  });
});

/** Pages of `file` in the page cache (fincore, util-linux). */
function cachedPages(file: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'PAGES', file], { encoding: 'utf8' }).trim());
}

/** An empty file of `mib` MiB opened as a page area, and one arena page to write from. */
async function pageArea(name: string, mib: number): Promise<{ file: string; pages: number; f: PageAreaFile; page: Uint8Array }> {
  const file = path.join(dir, name);
  const pages = (mib << 20) / 4096;
  fs.writeFileSync(file, '');
  fs.truncateSync(file, pages * 4096);
  const f = await PageAreaFile.open(file, 'auto', () => undefined);
  return { file, pages, f, page: new Arena({ bytes: 1 << 20 }).alloc(4096).view };
}

describe('PageAreaFile: isolated pages through the page cache', () => {
  it('every other page of 96 MiB: the bytes land, the skipped pages stay holes, and sync leaves no page cached', async () => {
    const { file, pages, f, page } = await pageArea('scattered', 96);
    for (let p = 0; p < pages; p += 2) await f.write(page.fill(p & 0xff | 1), p * 4096);
    await f.sync();
    await f.close();
    expect(f.direct).toBe(true);
    expect(f.bytesWritten).toBe((pages / 2) * 4096);
    // Allocated: the written half and the extent tree's own blocks (< 1%), no zero page filled in.
    const allocated = fs.statSync(file).blocks * 512;
    expect(allocated).toBeGreaterThanOrEqual((pages / 2) * 4096);
    expect(allocated).toBeLessThan((pages / 2) * 4096 * 1.01);
    expect(cachedPages(file)).toBe(0);
    const b = fs.readFileSync(file);
    for (const p of [0, 1, 2, 3, pages - 2, pages - 1]) {
      expect(b.subarray(p * 4096, (p + 1) * 4096).every((x) => x === (p % 2 ? 0 : (p & 0xff) | 1))).toBe(true);
    }
  });

  it('with writes queued as the stager queues them, the page cache never holds more than four 32 MiB windows', async () => {
    const { file, pages, f, page } = await pageArea('queued', 320);
    page.fill(7);
    // Ten writes in flight, the next issued as soon as any completes (the stager's pool).
    const inFlight = new Set<Promise<void>>();
    let peak = 0;
    for (let p = 0; p < pages; p += 2) {
      const w: Promise<void> = f.write(page, p * 4096).then(() => void inFlight.delete(w));
      inFlight.add(w);
      if (inFlight.size >= 10) await Promise.race(inFlight);
      if (p % 2048 === 0) peak = Math.max(peak, cachedPages(file) * 4096);
    }
    await Promise.all(inFlight);
    await f.sync();
    await f.close();
    expect(f.direct).toBe(true);
    // 160 MiB written; at most three windows being written back, one filling, and the ten queued pages.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual((128 << 20) + 10 * 4096);
    expect(cachedPages(file)).toBe(0);
    expect(fs.statSync(file).blocks * 512).toBeLessThan((pages / 2) * 4096 * 1.01);
  });
});

describe('PageAreaFile: close with a batch of runs still being written', () => {
  // With the native helper a batch is written on the thread pool to the raw descriptor, which
  // FileHandle.close() does not track: closed under it, the writes would fail (EBADF) or land in
  // whatever file took the descriptor number next. A failed command closes while writes are in flight.
  for (const mode of ['auto', 'off'] as const) {
    it(`${mode === 'auto' ? 'O_DIRECT' : 'buffered'}: close waits, and every page of the batch lands`, async () => {
      const file = path.join(dir, `close-${mode}`);
      const pages = (64 << 20) / 4096;
      fs.writeFileSync(file, '');
      fs.truncateSync(file, pages * 4096);
      const f = await PageAreaFile.open(file, mode, () => undefined);
      const data = new Arena({ bytes: 65 << 20 }).alloc(pages * 4096).view;
      for (let p = 0; p < pages; p++) data.fill((p & 0x7f) | 1, p * 4096, (p + 1) * 4096);
      const runs: [number, number][] = [];
      for (let p = 0; p < pages; p += 2) runs.push([p * 4096, (p + 1) * 4096]);
      const batch = f.writeRuns(data, runs, 0);
      await f.close();
      // Opened right after the close: it would take the descriptor number a stray write goes to.
      const other = path.join(dir, `close-${mode}-other`);
      fs.writeFileSync(other, '');
      const fd = fs.openSync(other, 'r+');
      await expect(batch).resolves.toBeUndefined();
      await expect(f.writeRuns(data, runs.slice(0, 1), 0)).rejects.toThrow(/close-\w+: the page-area file is closed/);
      fs.closeSync(fd);
      expect(fs.statSync(other).size).toBe(0);
      const b = fs.readFileSync(file);
      for (let p = 0; p < pages; p++) {
        const want = p % 2 ? 0 : (p & 0x7f) | 1;
        if (b[p * 4096] !== want || b[(p + 1) * 4096 - 1] !== want) throw new Error(`page ${p}: ${b[p * 4096]}, expected ${want}`);
      }
    });
  }
});
