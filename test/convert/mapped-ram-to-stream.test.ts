import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { MappedRamWriter } from '../../src/writer/mapped-ram-writer.js';
import { getFixture } from '../support/fixtures.js';
import { describeQemu, loadGuest } from '../support/qemu.js';
import { convertSuite, CLI, firstDifferentPage, runCli } from './support.js';

const MEM = 32;
const scratch = convertSuite();

describeQemu('mram convert: mapped-ram → plain stream, and re-layout', () => {
  it('QEMU loads the plain stream with mapped-ram off; RAM identical (input: multifd mapped-ram)', async () => {
    const fx = await getFixture('mr-mfd-32m');
    const out = path.join(scratch(), 'to-stream.mig');
    const r = runCli(['convert', fx.file, out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const f = await MigrationFile.open(out);
    try {
      expect(f.format).toBe('stream');
      expect(f.complete).toBe(true);
      expect(f.configuration!.capabilities).toBeNull();
      expect(f.vmdesc!.desc.configuration!.subsections).toBeUndefined();
    } finally {
      await f.close();
    }
    const { ram } = await loadGuest({ file: out, mappedRam: false, memMiB: MEM });
    expect(firstDifferentPage(ram, fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('writes the plain stream to stdout with OUT = -', async () => {
    const fx = await getFixture('mr-32m');
    const viaFile = path.join(scratch(), 'stdout-ref.mig');
    expect(runCli(['convert', fx.file, viaFile, '--to', 'stream']).status).toBe(0);
    const r = runCli(['convert', fx.file, '-']);
    expect(r.status).toBe(0);
    expect(r.stdout.equals(fs.readFileSync(viaFile))).toBe(true);
  });

  it('re-lays out a libvirt mapped-ram save at a new offset (header dropped on request, zero pages rescanned)', async () => {
    const fx = await getFixture('libvirt-mr-32m');
    const out = path.join(scratch(), 'relayout.mram');
    const r = runCli(['convert', fx.file, out, '--to', 'mapped-ram', '--offset', '4096', '--drop-libvirt-header']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const f = await MigrationFile.open(out, { offset: 4096 });
    try {
      expect(f.libvirt).toBeNull();
      expect(f.format).toBe('mapped-ram');
      expect(f.block('mem').presentPages).toBe(fx.meta.ramNonZeroPages);
    } finally {
      await f.close();
    }
    const { ram } = await loadGuest({ file: out, offset: 4096, mappedRam: true, memMiB: MEM });
    expect(firstDifferentPage(ram, fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('round-trips mapped-ram → stream → mapped-ram to QEMU\'s own layout', async () => {
    const fx = await getFixture('mr-32m');
    const s = path.join(scratch(), 'rt.mig');
    const m = path.join(scratch(), 'rt.mram');
    expect(runCli(['convert', fx.file, s]).status).toBe(0);
    expect(runCli(['convert', s, m]).status).toBe(0);
    const a = await MigrationFile.open(fx.file);
    const b = await MigrationFile.open(m);
    try {
      const offsets = (f: MigrationFile) => f.blocks.map((x) => [x.id, x.entry.mappedRam!.bitmapOffset, x.entry.mappedRam!.pagesOffset, x.presentPages]);
      expect(offsets(b)).toEqual(offsets(a));
      expect(firstDifferentPage(await b.block('mem').read(0, MEM << 20), fs.readFileSync(fx.ramImage))).toBe(-1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describeQemu('mram convert: O_DIRECT and failures', () => {
  it('leaves the page cache nearly empty after an O_DIRECT convert (fincore < 2% of bytes written)', async () => {
    // 64 MiB of non-zero pages (QEMU's 256 MiB fixtures are mostly zero): written by our writer, then converted.
    const input = path.join(scratch(), 'dio-in.mram');
    const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: null, uuid: null, subsectionOrder: [] };
    const w = await MappedRamWriter.create(input, { configuration: config, blocks: [{ id: 'mem', usedLength: 64 << 20 }], directIo: 'off' });
    const chunk = crypto.randomBytes(4 << 20);
    for (let p = 0; p < 16384; p += 1024) await w.writePages('mem', p, chunk);
    await w.finish();
    const out = path.join(scratch(), 'dio.mram');
    const r = runCli(['convert', input, out, '--to', 'mapped-ram', '--direct-io', 'on']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const allocated = fs.statSync(out).blocks * 512;
    const fin = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', out], { encoding: 'utf8' });
    expect(fin.status).toBe(0);
    const cached = Number(fin.stdout.trim());
    expect(allocated).toBeGreaterThanOrEqual(64 << 20);
    expect(cached).toBeLessThan(allocated * 0.02);
  });

  it('refuses an existing target without --force and leaves it untouched when the input is bad', async () => {
    const fx = await getFixture('stream-32m');
    const out = path.join(scratch(), 'existing.mram');
    fs.writeFileSync(out, 'keep me');
    const r1 = runCli(['convert', fx.file, out]);
    expect(r1.status).not.toBe(0);
    expect(r1.stderr).toMatch(/^mram convert: .*exists \(use --force/);
    expect(r1.stderr.trim().split('\n')).toHaveLength(1);

    const truncated = path.join(scratch(), 'truncated.mig');
    fs.writeFileSync(truncated, fs.readFileSync(fx.file).subarray(0, 200_000));
    const r2 = runCli(['convert', truncated, out, '--force']);
    expect(r2.status).toBe(1);
    expect(r2.stderr.trim().split('\n')).toHaveLength(1);
    expect(r2.stderr).not.toMatch(/\n\s+at /);
    expect(fs.readFileSync(out, 'utf8')).toBe('keep me');
    expect(fs.readdirSync(scratch()).filter((n) => n.includes('mram-tmp'))).toEqual([]);

    const r3 = runCli(['convert', fx.file, out, '--force']);
    expect(r3.status).toBe(0);
    expect((await MigrationFile.open(out).then(async (f) => (await f.close(), f.format)))).toBe('mapped-ram');
  });

  it('reports a full disk in one line (stdout on /dev/full)', async () => {
    const fx = await getFixture('mr-32m');
    const fd = fs.openSync('/dev/full', 'w');
    try {
      const r = spawnSync('node', [CLI, 'convert', fx.file, '-'], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe('mram convert: writing standard output: ENOSPC: no space left on device, write\n');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('rejects bad options with a usage error', () => {
    expect(runCli(['convert', 'a']).status).toBe(64);
    expect(runCli(['convert', 'a', 'b', '--direct-io', 'maybe']).stderr).toMatch(/--direct-io: expected auto, on or off/);
    expect(runCli(['convert', '-', 'b', '--to', 'stream'], Buffer.alloc(0)).status).toBe(64);
  });
});
