// The optional native helper (prebuilds/linux-x64/mram-io.node): it loads where it was built for, its
// calls do what the fs calls they replace do (errors included), and mram without it (MRAM_NATIVE=0)
// writes the same images from a QEMU save, exact holes and a clean page cache either way.
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeIo } from '../../src/io/native.js';
import { REPO_ROOT, getFixture } from '../support/fixtures.js';
import { makeTempDir } from '../support/qemu.js';

const dir = makeTempDir('mram-native-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const onBuiltPlatform = process.platform === 'linux' && process.arch === 'x64' && process.env.MRAM_NATIVE !== '0';
const cached = (file: string) => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '-o', 'RES', file], { encoding: 'utf8' }).trim());
const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('native helper', () => {
  it.runIf(onBuiltPlatform)('loads on linux-x64 (the committed prebuilt is usable)', () => {
    expect(nativeIo).not.toBeNull();
  });

  it.runIf(onBuiltPlatform)('offers exactly the calls mram makes', () => {
    expect(Object.keys(nativeIo!).sort()).toEqual(['pwriteRuns', 'writeBack']);
  });

  it.runIf(onBuiltPlatform)('pwriteRuns writes each run at its position off the main thread; errors (shaped as fs errors) and bad runs reject', async () => {
    const file = path.join(dir, 'runs');
    const fd = fs.openSync(file, 'w');
    try {
      const bytes = crypto.randomBytes(64 * 4096);
      // Every other page of the buffer, each to the slot 100 pages further on.
      const runs = Array.from({ length: 32 }, (_, i) => [2 * i * 4096, (2 * i + 1) * 4096, (2 * i + 100) * 4096]).flat();
      const pending = nativeIo!.pwriteRuns(fd, bytes, new Float64Array(runs));
      expect(pending).toBeInstanceOf(Promise);
      await pending;
      const back = fs.readFileSync(file);
      expect(back.length).toBe(163 * 4096);
      for (let p = 0; p < 163; p++) {
        const page = back.subarray(p * 4096, (p + 1) * 4096);
        const src = p >= 100 && (p - 100) % 2 === 0 ? bytes.subarray((p - 100) * 4096, (p - 99) * 4096) : Buffer.alloc(4096);
        expect(page.equals(src), `page ${p}`).toBe(true);
      }
    } finally {
      fs.closeSync(fd);
    }
    const closed = fs.openSync(path.join(dir, 'closed'), 'w');
    fs.closeSync(closed);
    await expect(nativeIo!.pwriteRuns(closed, new Uint8Array(4096), new Float64Array([0, 4096, 0]))).rejects.toMatchObject({ code: 'EBADF', errno: -9, message: 'EBADF: bad file descriptor, write' });
    const full = fs.openSync('/dev/full', 'w');
    try {
      await expect(nativeIo!.pwriteRuns(full, new Uint8Array(4096), new Float64Array([0, 4096, 0]))).rejects.toMatchObject({ code: 'ENOSPC' });
      // A run outside the buffer is refused, never read.
      await expect(nativeIo!.pwriteRuns(full, new Uint8Array(4096), new Float64Array([0, 8192, 0]))).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      fs.closeSync(full);
    }
  });

  it.runIf(onBuiltPlatform)('writeBack writes one range back and drops it from the page cache, leaving the rest; errors reject', async () => {
    const file = path.join(dir, 'wb');
    const fd = fs.openSync(file, 'w');
    try {
      // Every other page of 64, one write each, as PageAreaFile writes isolated pages (a range cannot
      // drop part of the large folio one long write may get).
      const bytes = crypto.randomBytes(64 * 4096);
      for (let p = 0; p < 64; p += 2) fs.writeSync(fd, bytes, p * 4096, 4096, p * 4096);
      // Pages 16..48 only: the 16 outside stay in the cache, as the window still filling does.
      await nativeIo!.writeBack(fd, 16 * 4096, 32 * 4096);
      expect(cached(file)).toBe(16 * 4096);
      fs.fdatasyncSync(fd);
      const back = fs.readFileSync(file);
      for (let p = 0; p < 63; p++) expect(back.subarray(p * 4096, (p + 1) * 4096).equals(p % 2 ? Buffer.alloc(4096) : bytes.subarray(p * 4096, (p + 1) * 4096)), `page ${p}`).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
    const closed = fs.openSync(path.join(dir, 'wb-closed'), 'w');
    fs.closeSync(closed);
    await expect(nativeIo!.writeBack(closed, 0, 4096)).rejects.toMatchObject({ code: 'EBADF', message: 'EBADF: bad file descriptor, sync_file_range' });
    expect(() => nativeIo!.writeBack(closed, 0, 0)).toThrow(TypeError);
  });

  const haveCc = spawnSync('cc', ['--version']).status === 0 && fs.existsSync('/usr/include/node/node_api.h');
  it.runIf(onBuiltPlatform && haveCc)('the committed prebuilt is what native/mram-io.c builds to (scripts/build-native.sh)', () => {
    const built = path.join(dir, 'mram-io.node');
    const script = fs.readFileSync(path.join(REPO_ROOT, 'scripts/build-native.sh'), 'utf8');
    const flags = /cc (-O2 [^\n]*?) -I"\$include" -o/.exec(script)![1]!.split(' ');
    const cc = spawnSync('cc', [...flags, '-I/usr/include/node', '-o', built, path.join(REPO_ROOT, 'native/mram-io.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    expect(fs.readFileSync(built).equals(fs.readFileSync(path.join(REPO_ROOT, 'prebuilds/linux-x64/mram-io.node')))).toBe(true);
  });

  it('without the helper (MRAM_NATIVE=0) extract writes the same image from a QEMU save: exact holes, nothing cached', async () => {
    const fx = await getFixture('mr-32m');
    const images = ['1', '0'].map((native) => {
      const out = path.join(dir, `mem-native${native}.ram`);
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/mram.js'), 'extract', fx.file, '--block', 'mem', '-o', out, '-q'], { env: { ...process.env, MRAM_NATIVE: native }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(cached(out)).toBe(0);
      return out;
    });
    expect(sha(images[0]!)).toBe(fx.meta.ramSha256);
    expect(sha(images[1]!)).toBe(fx.meta.ramSha256);
    expect(fs.statSync(images[0]!).blocks).toBe(fs.statSync(images[1]!).blocks);
  });
});
