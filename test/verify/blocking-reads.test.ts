// Plain verify reads page areas on the calling thread, one O_DIRECT read at a time: it must still give
// the event loop turns (a library caller's timers and I/O, signal listeners), and find what the reads in
// flight of verify --digest find.
import { expect, it } from 'vitest';
import { MigrationFile, readerArena, verifyFile } from '../../src/index.js';
import { getFixture } from '../support/fixtures.js';
import { describeQemu } from '../support/qemu.js';

// How plain verify reads (src/verify/verify.ts).
const VERIFY_READS = { blocking: true, chunkBytes: 1 << 20 };

describeQemu('verify with blocking reads', () => {
  it('lets timers run while it reads a 256 MiB page area', async () => {
    const file = await MigrationFile.open((await getFixture('mr-256m')).file);
    const arena = readerArena(VERIFY_READS);
    try {
      let last = performance.now();
      let maxGap = 0;
      const tick = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
      }, 1);
      const started = performance.now();
      let chunks = 0;
      for await (const c of file.block('mem').chunks(arena, VERIFY_READS)) chunks += c.pages > 0 ? 1 : 0;
      const took = performance.now() - started;
      clearInterval(tick);
      expect(chunks).toBeGreaterThan(0);
      // Without turns the reads would be one gap; the reader gives one every 10 ms of reads.
      expect(maxGap).toBeLessThan(took / 2);
    } finally {
      arena.reset();
      await file.close();
    }
  }, 300_000);

  it('finds the same as the reads in flight of --digest', async () => {
    const fx = await getFixture('mr-256m');
    const plain = await verifyFile(fx.file);
    const digested = await verifyFile(fx.file, { digest: true });
    expect(digested.digests.mem).toMatch(/^[0-9a-f]{64}$/);
    expect({ ...plain, digests: {} }).toEqual({ ...digested, digests: {} });
  }, 300_000);
});
