// libvirt save images without a daemon: compressed payloads (made here with the same programs
// libvirt runs) read by every command; corrupt or cut data, a missing program, an incomplete save,
// and the options that drop the header. Real libvirt saves and restores: test/libvirt/.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { getFixture } from '../support/fixtures.js';
import { buildLibvirtHeader, LibvirtFormat, readLibvirtHeader } from '../support/libvirt-header.js';
import { makeTempDir } from '../support/qemu.js';
import { libvirtOutputPrefix } from '../../src/convert/libvirt-save.js';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { MappedRamWriter } from '../../src/writer/mapped-ram-writer.js';
import { tempPathFor } from '../../src/writer/output-file.js';

const COMPRESSORS = ['gzip', 'bzip2', 'xz', 'lzop', 'zstd'] as const;
const dir = makeTempDir('mram-libvirt-save-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let stream: Buffer;
let reference: Record<string, string>;
let ramImage: Buffer;

/** A libvirt save of `payload` compressed by `program` (as libvirt writes it: header, then `program -c` output). */
function compressedSave(name: string, program: (typeof COMPRESSORS)[number], payload: Buffer = stream): string {
  const z = spawnSync(program, ['-c'], { input: payload, maxBuffer: 1 << 30 });
  if (z.status !== 0) throw new Error(`${program} -c failed: ${z.stderr}`);
  const { bytes } = buildLibvirtHeader({ format: LibvirtFormat[program], wasRunning: true, cookie: '<cookie/>' });
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([bytes, z.stdout]));
  return file;
}

async function verifyJson(file: string, ...args: string[]) {
  const r = await runCli(['verify', '--json', ...args, file]);
  return { code: r.code, report: JSON.parse(r.stdout), stderr: r.stderr };
}

function leftovers(): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes('mram-tmp'));
}

beforeAll(async () => {
  const fx = await getFixture('stream-32m');
  stream = fs.readFileSync(fx.file);
  ramImage = fs.readFileSync(fx.ramImage);
  reference = (await verifyJson(fx.file, '--digest')).report.digests;
  expect(reference['mem']).toBe(createHash('sha256').update(ramImage).digest('hex'));
});

describe('compressed libvirt saves', () => {
  it.each(COMPRESSORS)('%s: inspect, verify --digest, extract and convert read it; the digest is the guest RAM image\'s', async (program) => {
    const file = compressedSave(`vm.${program}`, program);
    const i = await runCli(['inspect', '--json', file]);
    expect(i.code, i.stderr).toBe(0);
    expect(JSON.parse(i.stdout).libvirt.formatName).toBe(program);
    const v = await verifyJson(file, '--digest');
    expect(v.code, JSON.stringify(v.report.errors)).toBe(0);
    expect(v.report.digests).toEqual(reference);

    const img = path.join(dir, `mem.${program}`);
    expect((await runCli(['extract', file, '--block', 'mem', '-o', img])).code).toBe(0);
    expect(fs.readFileSync(img).equals(ramImage)).toBe(true);

    const out = path.join(dir, `vm.${program}.sparse`);
    const c = await runCli(['convert', file, out]);
    expect(c.code, c.stderr).toBe(0);
    const a = readLibvirtHeader(fs.readFileSync(file));
    const b = readLibvirtHeader(fs.readFileSync(out));
    expect(b).toEqual({ ...a, format: LibvirtFormat.sparse });
    expect((await verifyJson(out, '--digest')).report.digests).toEqual(reference);

    // --to stream: the same save decompressed (format raw), QEMU's stream byte for byte.
    const raw = path.join(dir, `vm.${program}.raw`);
    const s = await runCli(['convert', file, raw, '--to', 'stream']);
    expect(s.code, s.stderr).toBe(0);
    const rawBytes = fs.readFileSync(raw);
    expect(readLibvirtHeader(rawBytes)).toEqual({ ...a, format: LibvirtFormat.raw });
    expect(rawBytes.subarray(92 + a.dataLen).equals(stream)).toBe(true);
    for (const f of [img, out, raw, file]) fs.rmSync(f);
  });

  it('corrupt compressed data fails with one line and leaves no output, in every command', async () => {
    const z = spawnSync('zstd', ['-c'], { input: stream }).stdout;
    const bad = Buffer.from(z);
    for (let i = bad.length >> 1; i < (bad.length >> 1) + 64; i++) bad[i] ^= 0x5a;
    const { bytes } = buildLibvirtHeader({ format: LibvirtFormat.zstd });
    const file = path.join(dir, 'corrupt.zstd');
    fs.writeFileSync(file, Buffer.concat([bytes, bad]));
    const v = await verifyJson(file);
    expect(v.code).toBe(2);
    expect(v.report.errors.map((e: { code: string }) => e.code)).toEqual(['E_DECOMPRESS']);
    for (const args of [['inspect', file], ['convert', file, path.join(dir, 'corrupt.out')], ['convert', file, path.join(dir, 'corrupt.out'), '--to', 'stream'], ['extract', file, '--block', 'mem', '-o', path.join(dir, 'corrupt.img')]]) {
      const r = await runCli(args);
      expect(r.code, args[0]).toBe(1);
      expect(r.stderr.trimEnd().split('\n'), args[0]).toHaveLength(1);
      expect(r.stderr).toMatch(/zstd/);
    }
    expect(fs.existsSync(path.join(dir, 'corrupt.out'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'corrupt.img'))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('compressed data cut short never converts into a complete-looking save', async () => {
    const z = spawnSync('gzip', ['-c'], { input: stream }).stdout;
    const { bytes } = buildLibvirtHeader({ format: LibvirtFormat.gzip });
    const file = path.join(dir, 'cut.gz');
    // Cut after the last page but before the device state, vmdesc and gzip trailer.
    fs.writeFileSync(file, Buffer.concat([bytes, z.subarray(0, z.length - 64)]));
    const out = path.join(dir, 'cut.out');
    const r = await runCli(['convert', file, out]);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('a missing program is named in one line', async () => {
    const file = compressedSave('vm.lzop', 'lzop');
    const saved = process.env.PATH;
    process.env.PATH = path.join(dir, 'no-such-bin');
    try {
      for (const args of [['inspect', file], ['convert', file, path.join(dir, 'x.out')]]) {
        const r = await runCli(args);
        expect(r.code, args[0]).toBe(1);
        expect(r.stderr).toMatch(/a lzop save: install lzop to read it/);
        expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      }
      // verify reports it as the file it could not check (exit 1).
      const v = await verifyJson(file);
      expect(v.code).toBe(1);
      expect(v.report.errors).toEqual([expect.objectContaining({ code: 'E_OPEN', message: expect.stringMatching(/install lzop/) })]);
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('convert and the libvirt header', () => {
  it('an incomplete save (LibvirtQemudPart) is refused with exit 1 unless --allow-incomplete; the output stays incomplete', async () => {
    const fx = await getFixture('libvirt-part-mr-32m');
    const out = path.join(dir, 'part.out');
    const r = await runCli(['convert', fx.file, out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/LibvirtQemudPart.*--allow-incomplete/);
    expect(fs.existsSync(out)).toBe(false);
    const ok = await runCli(['convert', fx.file, out, '--allow-incomplete']);
    expect(ok.code, ok.stderr).toBe(0);
    const h = readLibvirtHeader(fs.readFileSync(out));
    expect(h.magic).toBe('LibvirtQemudPart');
    expect(h.format).toBe(LibvirtFormat.raw);
    fs.rmSync(out);
  });

  it('--drop-libvirt-header writes a bare QEMU file; stdout never gets a header silently dropped', async () => {
    const fx = await getFixture('libvirt-mr-32m');
    const out = path.join(dir, 'bare.mig');
    expect((await runCli(['convert', fx.file, out, '--drop-libvirt-header'])).code).toBe(0);
    expect(fs.readFileSync(out).subarray(0, 4).toString('latin1')).toBe('QEVM');
    expect((await verifyJson(out, '--digest')).report.digests).toEqual((await verifyJson(fx.file, '--digest')).report.digests);
    fs.rmSync(out);
    const piped = await runCli(['convert', fx.file, '-']);
    expect(piped.code).toBe(64);
    expect(piped.stderr).toMatch(/--drop-libvirt-header/);
  });

  it('sparse → raw → sparse keeps XML, cookie, was_running and data_len; format follows the output', async () => {
    const fx = await getFixture('libvirt-mr-32m');
    const raw = path.join(dir, 'rt.raw');
    const sparse = path.join(dir, 'rt.sparse');
    expect((await runCli(['convert', fx.file, raw])).code).toBe(0);
    expect((await runCli(['convert', raw, sparse])).code).toBe(0);
    const a = readLibvirtHeader(fs.readFileSync(fx.file));
    expect(readLibvirtHeader(fs.readFileSync(raw))).toEqual({ ...a, format: LibvirtFormat.raw });
    expect(readLibvirtHeader(fs.readFileSync(sparse))).toEqual(a);
    const digest = (await verifyJson(fx.file, '--digest')).report.digests;
    expect((await verifyJson(sparse, '--digest')).report.digests).toEqual(digest);
    // The same bytes as the header libvirt wrote: header, XML, zero padding up to the data.
    const at = 92 + a.dataLen;
    expect(fs.readFileSync(sparse).subarray(0, at).equals(fs.readFileSync(fx.file).subarray(0, at))).toBe(true);
    // A sparse save re-laid out (mapped-ram → mapped-ram) keeps its header too.
    const relaid = path.join(dir, 'rt.relaid');
    expect((await runCli(['convert', fx.file, relaid, '--to', 'mapped-ram'])).code).toBe(0);
    expect(readLibvirtHeader(fs.readFileSync(relaid))).toEqual(a);
    expect((await verifyJson(relaid, '--digest')).report.digests).toEqual(digest);
    for (const f of [raw, sparse, relaid]) fs.rmSync(f);
  });

  it('the header is "LibvirtQemudPart" while the data is written and "LibvirtQemudSave" only after finish()', async () => {
    const fx = await getFixture('libvirt-mr-32m');
    const input = await MigrationFile.open(fx.file);
    const prefix = libvirtOutputPrefix(input.libvirt, 'mapped-ram', {})!;
    await input.close();
    const out = path.join(dir, 'order.sparse');
    const configuration = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: null, uuid: null, subsectionOrder: [] };
    const w = await MappedRamWriter.create(out, { prefix, offset: prefix.bytes.length, configuration, blocks: [{ id: 'mem', usedLength: 1 << 20 }] });
    await w.writePages('mem', 3, new Uint8Array(4096).fill(7));
    const magic = (f: string) => fs.readFileSync(f).subarray(0, 16).toString('latin1');
    expect(magic(tempPathFor(out))).toBe('LibvirtQemudPart');
    await w.finish();
    expect(magic(out)).toBe('LibvirtQemudSave');
    expect(readLibvirtHeader(fs.readFileSync(out)).format).toBe(LibvirtFormat.sparse);
  });
});
