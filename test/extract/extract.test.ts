// mram extract: raw RAM images equal to the guest's RAM, sparse, safe names, no silent overwrite.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractAll, extractBlock } from '../../src/extract/extract.js';
import { blockFileName, blockPath } from '../../src/extract/names.js';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { MappedRamWriter } from '../../src/writer/mapped-ram-writer.js';
import { getFixture } from '../support/fixtures.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../verify/support.js';

const dir = tempDir('mram-extract-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Whether the file system of `file` accepts O_DIRECT opens (tmpfs refuses them with EINVAL). */
function directOpens(file: string): boolean {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT));
    return true;
  } catch {
    return false;
  }
}

const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

describe('extract', () => {
  for (const name of ['mr-32m', 'mr-mfd-32m', 'mr-off-32m', 'libvirt-mr-32m', 'stream-32m']) {
    it(`${name}: --block mem equals the RAM image byte for byte and is sparse`, async () => {
      const fx = await getFixture(name);
      const out = path.join(dir, `${name}.ram`);
      const offset = fx.meta.libvirt ? [] : ['--offset', String(fx.meta.offset)];
      const r = await runCli(['extract', fx.file, '--block', 'mem', '-o', out, ...offset]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(fs.readFileSync(out).equals(fs.readFileSync(fx.ramImage))).toBe(true);
      const st = fs.statSync(out);
      expect(st.size).toBe(fx.meta.memMiB << 20);
      expect(st.blocks * 512).toBeLessThan(st.size);
      expect(fs.readdirSync(dir).filter((f) => f.includes('mram-tmp'))).toEqual([]);
    });
  }

  for (const name of ['mr-32m', 'mr-off-32m', 'stream-32m']) {
    it(`${name}: a file opened from a descriptor extracts the same bytes as one opened by path (QEMU's RAM image)`, async () => {
      const fx = await getFixture(name);
      const fd = fs.openSync(fx.file, 'r');
      try {
        const byFd = await MigrationFile.open(fd, { offset: fx.meta.offset });
        expect(byFd.path).toBe(`fd ${fd}`);
        // O_DIRECT page reads reach a descriptor too, wherever the file system takes the flag.
        const direct = await byFd.source.openDirect!();
        expect(direct !== null).toBe(directOpens(fx.file));
        await direct?.close();
        const outFd = path.join(dir, `${name}.fd.ram`);
        const r = await extractBlock(byFd, byFd.block('mem'), outFd);
        expect(r.length).toBe(fx.meta.memMiB << 20);
        const all = await extractAll(byFd, path.join(dir, `${name}.fd.all`));
        await byFd.close();
        // The descriptor stays the caller's: still open and readable after close.
        expect(fs.fstatSync(fd).size).toBe(fs.statSync(fx.file).size);
        const byPath = await MigrationFile.open(fx.file, { offset: fx.meta.offset });
        const outPath = path.join(dir, `${name}.path.ram`);
        await extractBlock(byPath, byPath.block('mem'), outPath);
        const allByPath = await extractAll(byPath, path.join(dir, `${name}.path.all`));
        await byPath.close();
        const image = fs.readFileSync(fx.ramImage);
        expect(fs.readFileSync(outFd).equals(image)).toBe(true);
        expect(fs.readFileSync(outPath).equals(image)).toBe(true);
        expect(all.map((x) => x.block)).toEqual(allByPath.map((x) => x.block));
        for (let i = 0; i < all.length; i++) expect(fs.readFileSync(all[i]!.path).equals(fs.readFileSync(allByPath[i]!.path)), all[i]!.block).toBe(true);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  it('writes the image with O_DIRECT: the page cache holds < 2% of it (fincore), and it equals the pages', async () => {
    // 64 MiB of non-zero pages (QEMU's fixtures are mostly zero), written by our writer.
    const input = path.join(dir, 'dense.mram');
    const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: null, uuid: null, subsectionOrder: [] };
    const w = await MappedRamWriter.create(input, { configuration: config, blocks: [{ id: 'mem', usedLength: 96 << 20 }], directIo: 'off' });
    const chunk = crypto.randomBytes(4 << 20);
    for (let p = 0; p < 16384; p += 1024) await w.writePages('mem', p, chunk);
    await w.finish();
    const out = path.join(dir, 'dense.ram');
    const r = await runCli(['extract', input, '--block', 'mem', '-o', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const allocated = fs.statSync(out).blocks * 512;
    const fin = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', out], { encoding: 'utf8' });
    expect(fin.status).toBe(0);
    expect(allocated).toBeGreaterThanOrEqual(64 << 20);
    expect(Number(fin.stdout.trim())).toBeLessThan(allocated * 0.02);
    const image = fs.readFileSync(out);
    expect(image.length).toBe(96 << 20);
    for (let p = 0; p < 16; p++) expect(image.subarray(p << 22, (p + 1) << 22).equals(chunk), `MiB ${p * 4}`).toBe(true);
    expect(image.subarray(64 << 20).every((b) => b === 0)).toBe(true);
  });

  it('-o - writes the dense image to stdout', async () => {
    const fx = await getFixture('mr-32m');
    const chunks: Buffer[] = [];
    const { PassThrough } = await import('node:stream');
    const { main } = await import('../../src/cli/main.js');
    const stdout = new PassThrough();
    stdout.on('data', (c: Buffer) => chunks.push(c));
    const code = await main(['extract', fx.file, '--block', 'mem', '-o', '-'], { stdout, stderr: new PassThrough(), stdin: new PassThrough() });
    expect(code).toBe(0);
    expect(sha(Buffer.concat(chunks))).toBe(fx.meta.ramSha256);
  });

  it('--all writes every block under DIR with escaped names; refuses to overwrite without --force', async () => {
    const fx = await getFixture('mr-32m');
    const out = path.join(dir, 'all');
    const r = await runCli(['extract', fx.file, '--all', out]);
    expect(r.code).toBe(0);
    const files = fs.readdirSync(out).sort();
    expect(files).toContain('mem.ram');
    expect(files).toContain('%2From@etc%2Facpi%2Ftables.ram');
    expect(sha(fs.readFileSync(path.join(out, 'mem.ram')))).toBe(fx.meta.ramSha256);
    const v = await runCli(['verify', '--json', '--digest', fx.file]);
    const digests = JSON.parse(v.stdout).digests as Record<string, string>;
    for (const [id, d] of Object.entries(digests)) expect(sha(fs.readFileSync(path.join(out, blockFileName(id))))).toBe(d);
    const again = await runCli(['extract', fx.file, '--all', out]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/exists/);
    expect((await runCli(['extract', fx.file, '--all', out, '--force'])).code).toBe(0);
  });

  it('a missing block is a usage error naming the blocks', async () => {
    const fx = await getFixture('mr-32m');
    const r = await runCli(['extract', fx.file, '--block', 'nope', '-o', path.join(dir, 'x')]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/pc\.bios/);
    expect(fs.existsSync(path.join(dir, 'x'))).toBe(false);
  });

  it('file names never leave DIR and stay distinct', () => {
    const ids = ['..', '.', '/', '../../etc/passwd', 'a/b', 'a%2Fb', '\x1b\n', 'x'.repeat(255), 'x'.repeat(254) + 'y', 'pc.ram'];
    const names = ids.map(blockFileName);
    expect(new Set(names).size).toBe(ids.length);
    for (const [i, n] of names.entries()) {
      expect(n).not.toMatch(/[/\x00-\x1f]/);
      expect(n.startsWith('.')).toBe(false);
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255);
      expect(path.dirname(blockPath(dir, ids[i]!))).toBe(path.resolve(dir));
    }
    expect(blockFileName('pc.ram')).toBe('pc.ram.ram');
    expect(blockFileName('/rom@etc/acpi/tables')).toBe('%2From@etc%2Facpi%2Ftables.ram');
  });
});
