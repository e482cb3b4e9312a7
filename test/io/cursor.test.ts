// Cursors against the file they read: random record sizes, seeks, records larger than the buffer,
// and a buffer moved into wasm memory mid-read (as the converter does) must all yield the file's bytes.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { FileCursor, StreamCursor, type Cursor } from '../../src/io/cursor.js';
import { FileSource } from '../../src/io/file-source.js';
import { PREFETCH_BUFFER, PrefetchFileCursor } from '../../src/io/prefetch-cursor.js';
import { Arena } from '../../src/kernel/arena.js';
import { makeTempDir } from '../support/qemu.js';
import { lcg } from '../support/random.js';

const dir = makeTempDir('mram-cursor-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SIZE = 40 << 20;
const file = path.join(dir, 'data');
const bytes = crypto.randomBytes(SIZE);
fs.writeFileSync(file, bytes);

/** Reads to the end in random steps (some past the buffer size, some seeks), checking every byte. */
async function walk(c: Cursor, seed: number, opts: { seeks: boolean; adoptAt?: number; arena?: Arena }): Promise<number> {
  const rnd = lcg(seed);
  let at = c.offset;
  let steps = 0;
  let adopted = false;
  while (at < SIZE) {
    if (opts.adoptAt !== undefined && !adopted && at >= opts.adoptAt) {
      await c.useBuffer(opts.arena!.alloc(PREFETCH_BUFFER).view);
      adopted = true;
    }
    const r = rnd() % 100;
    if (opts.seeks && r < 5) {
      // Forward, sometimes inside the buffer, sometimes far past it.
      at = Math.min(SIZE, at + (r < 2 ? rnd() % 4096 : rnd() % (24 << 20)));
      await c.seek(at, 'test');
      expect(c.offset).toBe(at);
      continue;
    }
    // Mostly record-sized reads; now and then one larger than the buffer (device state, vmdesc).
    const n = Math.min(SIZE - at, r === 99 ? (20 << 20) + (rnd() % 4096) : 1 + (rnd() % (r < 50 ? 64 : 300_000)));
    const got = await c.readBytes(n, 'test');
    if (!Buffer.from(got).equals(bytes.subarray(at, at + n))) throw new Error(`bytes differ at ${at} (+${n}), step ${steps}`);
    at += n;
    expect(c.offset).toBe(at);
    steps++;
  }
  expect(await c.atEnd()).toBe(true);
  await expect(c.readU8('past the end')).rejects.toThrow(/end of file|end of input/);
  return steps;
}

describe('cursors yield the bytes of the file', () => {
  for (const seed of [1, 2, 3]) {
    it(`FileCursor and PrefetchFileCursor, seed ${seed}`, async () => {
      const source = await FileSource.open(file);
      try {
        expect(await walk(new FileCursor(source, 0), seed, { seeks: true })).toBeGreaterThan(50);
        expect(await walk(new PrefetchFileCursor(source, 0), seed, { seeks: true })).toBeGreaterThan(50);
        // The converter's arrangement: the buffer moves into wasm memory after the first records.
        const arena = new Arena({ bytes: 2 * PREFETCH_BUFFER });
        await walk(new PrefetchFileCursor(source, 0), seed, { seeks: false, adoptAt: 1000 + seed * 777, arena });
      } finally {
        await source.close();
      }
    });
  }

  it('PrefetchFileCursor over a source whose reads finish late and out of step', async () => {
    const source = await FileSource.open(file);
    try {
      const rnd = lcg(5);
      // Each read fills its view only after a random delay, like a slow disk.
      const slow = {
        size: source.size,
        readInto: async (view: Uint8Array, position: number) => {
          await new Promise((r) => setTimeout(r, rnd() % 8 === 0 ? 40 : rnd() % 3));
          return source.readInto(view, position);
        },
      } as unknown as FileSource;
      await walk(new PrefetchFileCursor(slow, 0), 5, { seeks: true });
      const arena = new Arena({ bytes: 2 * PREFETCH_BUFFER });
      await walk(new PrefetchFileCursor(slow, 0), 6, { seeks: true, adoptAt: 3000, arena });
    } finally {
      await source.close();
    }
  });

  it('StreamCursor over uneven chunks, with its buffer moved into wasm memory', async () => {
    const rnd = lcg(9);
    const chunks: Buffer[] = [];
    for (let at = 0; at < SIZE; ) {
      const n = Math.min(SIZE - at, 1 + (rnd() % 200_000));
      chunks.push(bytes.subarray(at, at + n));
      at += n;
    }
    const arena = new Arena({ bytes: 2 * PREFETCH_BUFFER });
    await walk(new StreamCursor(Readable.from(chunks)), 9, { seeks: true, adoptAt: 5000, arena });
  });

  it('useBuffer refuses a buffer smaller than the unread bytes', async () => {
    const source = await FileSource.open(file);
    try {
      const c = new PrefetchFileCursor(source, 0);
      await c.need(100_000, 'test');
      await expect(c.useBuffer(new Uint8Array(10))).rejects.toThrow(RangeError);
    } finally {
      await source.close();
    }
  });
});
