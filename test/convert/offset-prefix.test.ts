// `mram convert --offset N` over an existing OUT keeps OUT's bytes [0, N), as QEMU 9.1+ does for
// `migrate file:OUT,offset=N` (open without O_TRUNC, ftruncate to N: migration/file.c,
// file_start_outgoing_migration). A tool that writes its own header there first (libvirt) keeps it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MigrationFile } from '../../src/reader/migration-file.js';
import type { MappedRamBlock } from '../../src/reader/ram-block.js';
import { runCli } from '../support/cli.js';
import { getFixture } from '../support/fixtures.js';
import { firstDifferentPage } from './support.js';

async function mapOf(file: string, offset: number, withRam = true) {
  const f = await MigrationFile.open(file, { offset });
  try {
    const mem = f.block('mem');
    return {
      format: f.format,
      offsets: (f.blocks as MappedRamBlock[]).map((b) => [b.id, b.entry.entryOffset, b.bitmapOffset, b.pagesOffset]),
      ram: withRam ? await mem.read(0, mem.usedLength) : null,
    };
  } finally {
    await f.close();
  }
}

function scratch(): string {
  return fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'mram-offset-'));
}

describe('mram convert --offset N over an existing file', () => {
  it('keeps OUT\'s first N bytes and drops the rest, like QEMU\'s own file:OUT,offset=N (fixture mr-off-32m)', async () => {
    // mr-off-32m: QEMU 10 saved this guest with file:F,offset=0x11921 into an F that held N 'X' bytes.
    const qemu = await getFixture('mr-off-32m');
    const N = qemu.meta.offset;
    const fx = await getFixture('stream-32m'); // same guest (seed), saved as a plain stream
    const dir = scratch();
    try {
      const out = path.join(dir, 'vm.save');
      // The "header" a tool wrote, then junk past N (a longer earlier save) that must not survive.
      fs.writeFileSync(out, Buffer.concat([Buffer.alloc(N, 'X'), Buffer.alloc(3 << 20, 0xee)]));
      const r = await runCli(['convert', fx.file, out, '--offset', String(N), '--force']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);

      const ours = fs.readFileSync(out);
      const theirs = fs.readFileSync(qemu.file);
      expect(ours.subarray(0, N).equals(theirs.subarray(0, N))).toBe(true); // all 'X', as QEMU left them
      expect(ours.subarray(N, N + 4).toString('latin1')).toBe('QEVM');

      // Past N, byte for byte what a conversion into a new file writes: nothing of the junk remains.
      const fresh = path.join(dir, 'fresh.save');
      expect((await runCli(['convert', fx.file, fresh, '--offset', String(N)])).code).toBe(0);
      const freshBytes = fs.readFileSync(fresh);
      expect(freshBytes.subarray(0, N).equals(Buffer.alloc(N))).toBe(true); // a new file: [0, N) is a hole
      expect(ours.length).toBe(freshBytes.length);
      expect(ours.subarray(N).equals(freshBytes.subarray(N))).toBe(true);

      const a = await mapOf(out, N);
      const q = await mapOf(qemu.file, N, false);
      expect(a.format).toBe('mapped-ram');
      expect(a.offsets).toEqual(q.offsets);
      expect(firstDifferentPage(a.ram!, fs.readFileSync(fx.ramImage))).toBe(-1);
      expect(fs.readdirSync(dir).sort()).toEqual(['fresh.save', 'vm.save']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an existing OUT shorter than N keeps its bytes; the rest up to N reads as zeros (QEMU: ftruncate extends)', async () => {
    const fx = await getFixture('stream-32m');
    const dir = scratch();
    try {
      const out = path.join(dir, 'vm.save');
      const header = Buffer.alloc(92, 'H');
      fs.writeFileSync(out, header);
      const r = await runCli(['convert', fx.file, out, '--offset', '64K', '--force']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const bytes = fs.readFileSync(out);
      expect(bytes.subarray(0, 92).equals(header)).toBe(true);
      expect(bytes.subarray(92, 65536).equals(Buffer.alloc(65536 - 92))).toBe(true);
      expect(firstDifferentPage((await mapOf(out, 65536)).ram!, fs.readFileSync(fx.ramImage))).toBe(-1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without --force an existing OUT is refused and left untouched (exit 64)', async () => {
    const fx = await getFixture('stream-32m');
    const dir = scratch();
    try {
      const out = path.join(dir, 'vm.save');
      fs.writeFileSync(out, 'header');
      const r = await runCli(['convert', fx.file, out, '--offset', '4096']);
      expect(r.code).toBe(64);
      expect(r.stderr).toBe(`mram convert: ${out} exists (use --force to overwrite it)\n`);
      expect(fs.readFileSync(out, 'utf8')).toBe('header');
      expect(fs.readdirSync(dir)).toEqual(['vm.save']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('--force replaces files only: a FIFO or a directory named OUT is refused and left as it was', async () => {
    const fx = await getFixture('stream-32m');
    const dir = scratch();
    try {
      const fifo = path.join(dir, 'pipe');
      spawnSync('mkfifo', [fifo]);
      expect(fs.statSync(fifo).isFIFO()).toBe(true);
      const sub = path.join(dir, 'sub');
      fs.mkdirSync(sub);
      for (const [out, args] of [
        [fifo, ['convert', fx.file, fifo, '--force']],
        [sub, ['convert', fx.file, sub, '--force']],
        [fifo, ['extract', fx.file, '--block', 'mem', '-o', fifo, '--force']],
      ] as const) {
        const r = await runCli([...args]);
        expect(r.code, r.stderr).toBe(64);
        expect(r.stderr).toContain(`${out} exists and is not a regular file`);
      }
      expect(fs.statSync(fifo).isFIFO()).toBe(true);
      expect(fs.statSync(sub).isDirectory()).toBe(true);
      expect(fs.readdirSync(dir).sort()).toEqual(['pipe', 'sub']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
