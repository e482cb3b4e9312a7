// PageAreaFile's fallback when O_DIRECT is accepted on open but a write is refused (EINVAL).
// No filesystem here does that, so the kernel's own EINVAL for a misaligned buffer stands in
// for it: the probe cannot tell the two apart, and the fallback must handle either.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/format/errors.js';
import { PageAreaFile } from '../../src/io/direct-writer.js';
import { Arena } from '../../src/kernel/arena.js';
import { makeTempDir } from '../support/qemu.js';

const dir = makeTempDir('mram-pagearea-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** 4096 bytes at an address that is 1 byte off any block boundary: O_DIRECT rejects it. */
function misaligned(fill: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(8192), 1, 4096).fill(fill);
}

describe('PageAreaFile: O_DIRECT refused at the first write', () => {
  it('auto: warns once, reopens buffered, and every byte lands', async () => {
    const file = path.join(dir, 'auto');
    fs.writeFileSync(file, '');
    const warnings: string[] = [];
    const f = await PageAreaFile.open(file, 'auto', (m) => warnings.push(m));
    expect(f.direct).toBe(true);
    await f.write(misaligned(7), 8192);
    await f.write(misaligned(9), 0);
    await f.sync();
    await f.close();
    expect(f.direct).toBe(false);
    expect(warnings).toEqual([expect.stringMatching(/refuses O_DIRECT writes \(EINVAL\); writing pages through the page cache/)]);
    const b = fs.readFileSync(file);
    expect(b.length).toBe(12288);
    expect(b.subarray(0, 4096).every((x) => x === 9)).toBe(true);
    expect(b.subarray(4096, 8192).every((x) => x === 0)).toBe(true);
    expect(b.subarray(8192).every((x) => x === 7)).toBe(true);
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
    const region = new Arena({ bytes: 1 << 20 }).alloc(4096);
    region.view.fill(5);
    await f.write(region.view, 4096);
    await f.close();
    expect(f.direct).toBe(true);
    expect(warnings).toEqual([]);
    expect(fs.readFileSync(file).subarray(4096).every((x) => x === 5)).toBe(true);
  });
});
