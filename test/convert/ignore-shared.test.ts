// Blocks that x-ignore-shared leaves out, as QEMU writes them: the shared `mem` block (a
// memory-backend-file with share=on) is not in the file. QEMU 11 writes mapped-ram files with a
// 0/0 header for it; both generations write plain streams without page records for it.
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { expect, it } from 'vitest';
import { IgnoredBlockError } from '../../src/format/errors.js';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { getFixture, REPO_ROOT, type Fixture } from '../support/fixtures.js';
import { describeQemu, describeQemuOn, loadGuest, makeTempDir } from '../support/qemu.js';
import { convertSuite, firstDifferentPage, runCli } from './support.js';

const scratch = convertSuite();
const validate = new Ajv({ allErrors: true }).compile(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'spec/inspect.schema.json'), 'utf8')));

interface BlockJson {
  id: string;
  ignored: boolean;
  presentPages: number;
  bitmapOffset: number | null;
  pagesOffset: number | null;
  entryOffset: number;
  headerOffset: number | null;
  mrAddr: number | null;
}

/** The blocks of `inspect --json`, whose document must validate against spec/inspect.schema.json. */
function blocksOf(file: string): BlockJson[] {
  const r = runCli(['inspect', '--json', file]);
  expect(r.status).toBe(0);
  const doc = JSON.parse(r.stdout.toString()) as { blocks: BlockJson[] };
  expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
  return doc.blocks;
}

/**
 * Loads `file` into the generation in force with x-ignore-shared, the destination's `mem` mapped
 * from a copy of the source's shared memory (the RAM image QEMU saved from); returns that memory.
 */
async function loadSharingMemory(fx: Fixture, file: string, mappedRam: boolean): Promise<Buffer> {
  const shm = makeTempDir('mram-xis-', true);
  try {
    const ramPath = path.join(shm, 'ram');
    fs.copyFileSync(fx.ramImage, ramPath);
    const { ram } = await loadGuest({ file, mappedRam, ignoreShared: true, memMiB: fx.meta.memMiB, ramPath });
    return ram;
  } finally {
    fs.rmSync(shm, { recursive: true, force: true });
  }
}

describeQemu('x-ignore-shared plain streams', () => {
  it('inspect marks the left-out block (no page record) and reports each block\'s guest address', async () => {
    const fx = await getFixture('stream-xis-32m');
    const blocks = blocksOf(fx.file);
    const mem = blocks.find((b) => b.id === 'mem')!;
    expect(mem).toMatchObject({ ignored: true, presentPages: 0, mrAddr: 0 });
    // The PC memory map, independently of the file: the BIOS ends at 4 GiB, option ROMs start at 0xC0000.
    expect(blocks.find((b) => b.id === 'pc.bios')!.mrAddr).toBe(2 ** 32 - 256 * 1024);
    expect(blocks.find((b) => b.id === 'pc.rom')!.mrAddr).toBe(0xc0000);
    expect(blocks.filter((b) => b.ignored).map((b) => b.id)).toEqual(['mem']);
    expect(runCli(['inspect', fx.file]).stdout.toString()).toMatch(/^ {2}mem +32\.0 MiB +8192 +IGNORED/m);
  });

  it('converts to mapped-ram with the 0/0 header QEMU 11 writes; verify finds it clean', async () => {
    const fx = await getFixture('stream-xis-32m');
    const out = path.join(scratch(), `xis-${fx.meta.generation ?? '10'}.mram`);
    const r = runCli(['convert', fx.file, out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const blocks = blocksOf(out);
    const mem = blocks.find((b) => b.id === 'mem')!;
    expect(mem).toMatchObject({ ignored: true, presentPages: 0, bitmapOffset: 0, pagesOffset: 0 });
    // The next entry starts right after the 28-byte header: no area was reserved.
    const next = blocks[blocks.indexOf(mem) + 1]!;
    expect(next.entryOffset).toBe(mem.headerOffset! + 28);
    const f = await MigrationFile.open(out);
    try {
      const h = f.block('mem').entry.mappedRam!;
      expect([h.bitmapOffset, h.pagesOffset]).toEqual([0, 0]);
    } finally {
      await f.close();
    }
    expect(runCli(['verify', out]).status).toBe(0);
  });

  it('from a pipe it is refused in one line (which blocks are left out shows only at the end)', async () => {
    const fx = await getFixture('stream-xis-32m');
    const out = path.join(scratch(), 'pipe.mram');
    const r = runCli(['convert', '-', out], fs.readFileSync(fx.file));
    expect(r.status).toBe(64);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/x-ignore-shared stream cannot be converted from a pipe/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describeQemuOn(['11'], 'x-ignore-shared mapped-ram (QEMU 11 writes it)', () => {
  it('inspect: "ignored": true and 0 present pages in --json, IGNORED in the table; the schema holds', async () => {
    const fx = await getFixture('mr-xis-32m');
    const mem = blocksOf(fx.file).find((b) => b.id === 'mem')!;
    expect(mem).toMatchObject({ ignored: true, presentPages: 0, mrAddr: 0, bitmapOffset: 0, pagesOffset: 0 });
    const text = runCli(['inspect', fx.file]).stdout.toString();
    expect(text).toMatch(/^ {2}mem +32\.0 MiB +8192 +IGNORED +- +- +-$/m);
    expect(text).toMatch(/^ignored +mem: left out by x-ignore-shared/m);
  });

  it('RamBlock never reads the left-out block: a clear error naming it', async () => {
    const fx = await getFixture('mr-xis-32m');
    const f = await MigrationFile.open(fx.file);
    try {
      const mem = f.block('mem');
      expect(mem.ignored).toBe(true);
      expect([...mem.presentRuns()]).toEqual([]);
      await expect(mem.readPage(0)).rejects.toThrow(IgnoredBlockError);
      await expect(mem.read(0, 4096)).rejects.toThrow(/"mem" was left out by x-ignore-shared: its memory is not in the file/);
      // The other blocks read as saved (pc.bios is migrated: its last page holds the reset vector).
      expect(f.block('pc.bios').ignored).toBe(false);
      expect(f.block('pc.bios').presentPages).toBeGreaterThan(0);
    } finally {
      await f.close();
    }
  });

  it('extract --block refuses it in one line (exit 1, nothing written); --all skips it with a note', async () => {
    const fx = await getFixture('mr-xis-32m');
    const out = path.join(scratch(), 'mem.ram');
    const r = runCli(['extract', fx.file, '--block', 'mem', '-o', out]);
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/"mem" was left out by x-ignore-shared/);
    expect(fs.existsSync(out)).toBe(false);
    const dir = path.join(scratch(), 'all');
    const a = runCli(['extract', fx.file, '--all', dir]);
    expect(a.status).toBe(0);
    expect(a.stderr).toMatch(/^mem: skipped, left out by x-ignore-shared/m);
    expect(fs.readdirSync(dir).sort()).toEqual(['%2From@etc%2Facpi%2Frsdp.ram', '%2From@etc%2Facpi%2Ftables.ram', '%2From@etc%2Ftable-loader.ram', 'pc.bios.ram', 'pc.rom.ram']);
  });

  it('QEMU 11 loads the file itself with x-ignore-shared; the shared memory is the source RAM', async () => {
    const fx = await getFixture('mr-xis-32m');
    expect(firstDifferentPage(await loadSharingMemory(fx, fx.file, true), fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('convert --to stream sends no page of it; QEMU 11 loads the stream and leaves the shared memory untouched', async () => {
    const fx = await getFixture('mr-xis-32m');
    const out = path.join(scratch(), 'xis.stream');
    const r = runCli(['convert', fx.file, out, '--to', 'stream']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const blocks = blocksOf(out);
    expect(blocks.find((b) => b.id === 'mem')).toMatchObject({ ignored: true, presentPages: 0, mrAddr: 0 });
    // The stream is smaller than the guest's shared RAM's present pages: none of them went in.
    expect(fs.statSync(out).size).toBeLessThan(fx.meta.ramNonZeroPages * 4096);
    // Loaded over a copy of the source's shared memory, every byte of it stays as it was.
    expect(firstDifferentPage(await loadSharingMemory(fx, out, false), fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('an x-ignore-shared stream converted to mapped-ram has QEMU 11\'s own block layout, and QEMU 11 loads it', async () => {
    const stream = await getFixture('stream-xis-32m');
    const qemu = await getFixture('mr-xis-32m');
    const out = path.join(scratch(), 'from-stream.mram');
    expect(runCli(['convert', stream.file, out]).status).toBe(0);
    const pick = (b: BlockJson) => [b.id, b.entryOffset, b.headerOffset, b.bitmapOffset, b.pagesOffset, b.mrAddr, b.ignored];
    expect(blocksOf(out).map(pick)).toEqual(blocksOf(qemu.file).map(pick));
    expect(firstDifferentPage(await loadSharingMemory(stream, out, true), fs.readFileSync(stream.ramImage))).toBe(-1);
  });

  it('mapped-ram re-layout keeps the 0/0 header; QEMU 11 loads the result', async () => {
    const fx = await getFixture('mr-xis-32m');
    const out = path.join(scratch(), 'relayout.mram');
    expect(runCli(['convert', fx.file, out, '--to', 'mapped-ram', '--offset', '8192']).status).toBe(0);
    const f = await MigrationFile.open(out, { offset: 8192 });
    try {
      expect(f.block('mem').ignored).toBe(true);
      expect(f.block('pc.bios').entry.mappedRam!.pagesOffset % 0x100000).toBe(0);
    } finally {
      await f.close();
    }
    const shm = makeTempDir('mram-xis-', true);
    try {
      const ramPath = path.join(shm, 'ram');
      fs.copyFileSync(fx.ramImage, ramPath);
      const { ram } = await loadGuest({ file: out, offset: 8192, mappedRam: true, ignoreShared: true, memMiB: 32, ramPath });
      expect(firstDifferentPage(ram, fs.readFileSync(fx.ramImage))).toBe(-1);
    } finally {
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });

  it('verify: the QEMU file is clean; a half-zero header is E_IGNORED_OFFSETS', async () => {
    const fx = await getFixture('mr-xis-32m');
    expect(runCli(['verify', fx.file]).status).toBe(0);
    const f = await MigrationFile.open(fx.file);
    const at = f.block('mem').entry.mappedRam!.headerOffset;
    await f.close();
    const bad = path.join(scratch(), 'half-zero.mram');
    fs.copyFileSync(fx.file, bad);
    // pages_offset (header + 20) set to 1 MiB, bitmap_offset left 0.
    const fd = fs.openSync(bad, 'r+');
    const word = Buffer.alloc(8);
    word.writeBigUInt64BE(0x100000n);
    fs.writeSync(fd, word, 0, 8, at + 20);
    fs.closeSync(fd);
    const r = runCli(['verify', '--json', bad]);
    expect(r.status).toBe(2);
    const codes = (JSON.parse(r.stdout.toString()) as { errors: Array<{ code: string; block?: string }> }).errors.map((e) => e.code);
    expect(codes).toContain('E_IGNORED_OFFSETS');
  });
});

describeQemu('0/0 header without x-ignore-shared', () => {
  it('verify reports E_IGNORED_NO_CAPABILITY; the reader refuses it in one line', async () => {
    const fx = await getFixture('mr-32m');
    const f = await MigrationFile.open(fx.file);
    const last = f.blocks[f.blocks.length - 1]!;
    const at = last.entry.mappedRam!.headerOffset;
    await f.close();
    const bad = path.join(scratch(), 'zero-no-cap.mram');
    fs.copyFileSync(fx.file, bad);
    const fd = fs.openSync(bad, 'r+');
    fs.writeSync(fd, Buffer.alloc(16), 0, 16, at + 12);
    fs.closeSync(fd);
    const r = runCli(['verify', '--json', bad]);
    expect(r.status).toBe(2);
    const errors = (JSON.parse(r.stdout.toString()) as { errors: Array<{ code: string; offset: number }> }).errors;
    expect(errors.find((e) => e.code === 'E_IGNORED_NO_CAPABILITY')?.offset).toBe(at + 12);
    const i = runCli(['inspect', bad]);
    expect(i.status).toBe(1);
    expect(i.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(i.stderr).toMatch(/offsets 0\/0 leave a block out only under x-ignore-shared/);
  });
});
