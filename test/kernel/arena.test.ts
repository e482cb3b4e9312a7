import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Arena, REGION_ALIGN } from '../../src/kernel/index.js';
// The debug kernel (assertions on, through @assemblyscript/loader): a kernel bounds violation names its assembly/*.ts line.
vi.mock('../../src/kernel/wasm.js', (original) => import('../support/debug-kernel.js').then((m) => m.withDebugKernel(original)));

describe('Arena', () => {
  it('hands out 4096-aligned, non-overlapping regions and reuses freed space', () => {
    const arena = new Arena({ bytes: 1 << 20 });
    const a = arena.alloc(1);
    const b = arena.alloc(5000);
    const c = arena.alloc(4096);
    for (const r of [a, b, c]) {
      expect(r.ptr % REGION_ALIGN).toBe(0);
      expect(r.view.byteOffset).toBe(r.ptr);
      expect(r.view.buffer).toBe(arena.buffer);
    }
    expect(b.view.byteLength).toBe(5000);
    expect(b.ptr).toBeGreaterThanOrEqual(a.ptr + 4096);
    expect(c.ptr).toBeGreaterThanOrEqual(b.ptr + 8192);
    b.free();
    b.free(); // double free is harmless
    const d = arena.alloc(8192);
    expect(d.ptr).toBe(b.ptr);
    // Freeing everything coalesces back into one span that fits the whole capacity.
    for (const r of [a, c, d]) r.free();
    const all = arena.alloc(arena.capacity);
    expect(all.view.byteLength).toBe(1 << 20);
    all.free();
  });

  it('never grows: exhaustion throws and the buffer stays attached', () => {
    const arena = new Arena({ bytes: 256 << 10 });
    const buffer = arena.buffer;
    const size = buffer.byteLength;
    const r = arena.alloc(200 << 10);
    expect(() => arena.alloc(100 << 10)).toThrow(RangeError);
    // initial = maximum, so even an explicit grow is refused.
    expect(() => (arena.memory as unknown as { grow(n: number): number }).grow(1)).toThrow(RangeError);
    expect(arena.buffer.byteLength).toBe(size);
    expect(r.view.byteLength).toBe(200 << 10);
    arena.reset();
    expect(arena.alloc(arena.capacity).ptr).toBe(r.ptr);
  });

  it('rejects sizes a wasm32 memory cannot hold and views from elsewhere', () => {
    expect(() => new Arena({ bytes: 0 })).toThrow(RangeError);
    expect(() => new Arena({ bytes: 2 ** 32 })).toThrow(RangeError);
    const arena = new Arena({ bytes: 1 << 20 });
    expect(() => arena.scan(new Uint8Array(4096))).toThrow(RangeError);
    expect(() => arena.scan(new Uint8Array(arena.buffer, 0, 4096))).toThrow(RangeError);
  });
});

describe('O_DIRECT', () => {
  // O_DIRECT bypasses the page cache: the kernel DMAs straight from the user buffer, so its
  // address (not just offset and length) must be block-aligned. Node's Buffers make no such promise.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-odirect-'));
  const file = path.join(dir, 'direct.bin');
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_DIRECT;
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes 1 MiB from an arena region', () => {
    const arena = new Arena({ bytes: 2 << 20 });
    const region = arena.alloc(1 << 20);
    region.view.fill(0xa5);
    const fd = fs.openSync(file, flags);
    try {
      expect(fs.writeSync(fd, region.view, 0, region.view.byteLength, 0)).toBe(1 << 20);
    } finally {
      fs.closeSync(fd);
    }
    const back = fs.readFileSync(file);
    expect(back.length).toBe(1 << 20);
    expect(back.every((b) => b === 0xa5)).toBe(true);
  });

  it('rejects the same write from Buffer.alloc with EINVAL (misaligned heap address)', () => {
    const buf = Buffer.alloc(1 << 20, 0xa5);
    const fd = fs.openSync(file, flags);
    try {
      expect(() => fs.writeSync(fd, buf, 0, buf.length, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    } finally {
      fs.closeSync(fd);
    }
  });
});
