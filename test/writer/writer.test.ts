import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MappedRamWriter } from '../../src/writer/mapped-ram-writer.js';
import { tempPathFor } from '../../src/writer/output-file.js';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { makeTempDir } from '../support/qemu.js';

const dir = makeTempDir('mram-writer-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: null, uuid: null, subsectionOrder: [] };

function pattern(pages: number, seed: number): Uint8Array {
  const b = new Uint8Array(pages * 4096);
  for (let p = 0; p < pages; p++) if ((p + seed) % 3 !== 0) b.fill((p * 7 + seed) & 0xff || 1, p * 4096, p * 4096 + 4096);
  return b;
}

describe('MappedRamWriter', () => {
  it('writes a file the reader maps back: pages, holes for zero pages, devices, offset', async () => {
    const out = path.join(dir, 'lib.mram');
    const w = await MappedRamWriter.create(out, { offset: 4096, configuration: config, blocks: [{ id: 'mem', usedLength: 4 << 20 }, { id: 'rom', usedLength: 64 << 10 }] });
    const a = pattern(512, 1);
    await w.writePages('mem', 0, a);
    await w.writePages('mem', 1000, pattern(24, 2));
    await w.writePages('mem', 1001, new Uint8Array(4096)); // re-sent as zero: bit cleared
    await w.writePages('rom', 3, pattern(2, 5));
    await w.writeDevice({ idstr: 'timer', version: 2 }, new Uint8Array([1, 2, 3]));
    await w.writeVmdesc(JSON.stringify({ page_size: 4096, devices: [{ name: 'timer', instance_id: 0, vmsd_name: 'timer', version: 2, fields: [{ name: 'data', type: 'buffer', size: 3 }] }] }));
    const s = await w.finish();
    expect(fs.existsSync(tempPathFor(out))).toBe(false);
    const f = await MigrationFile.open(out, { offset: 4096 });
    try {
      expect(f.format).toBe('mapped-ram');
      expect(f.complete).toBe(true);
      const mem = f.block('mem');
      expect(Buffer.from(await mem.read(0, a.length)).equals(Buffer.from(a))).toBe(true);
      expect(mem.isPresent(0)).toBe(true);
      expect(mem.isPresent(2)).toBe(false);
      expect(mem.isPresent(1001)).toBe(false);
      expect(mem.isPresent(1000)).toBe(true);
      expect(s.presentPages).toBe(f.blocks.reduce((n, b) => n + b.presentPages, 0));
      expect(f.sections.filter((x) => x.type === 'end').length).toBe(1);
      expect(f.sections.some((x) => x.type === 'full' && x.idstr === 'timer')).toBe(true);
    } finally {
      await f.close();
    }
  });

  it('leaves an existing target untouched unless forced, and removes its temporary file on abort', async () => {
    const out = path.join(dir, 'keep.mram');
    fs.writeFileSync(out, 'precious');
    await expect(MappedRamWriter.create(out, { configuration: config })).rejects.toThrow(/exists.*--force/);
    const w = await MappedRamWriter.create(out, { force: true, configuration: config, blocks: [{ id: 'mem', usedLength: 1 << 20 }] });
    await w.writePages('mem', 0, pattern(16, 3));
    expect(fs.existsSync(tempPathFor(out))).toBe(true);
    await w.abort();
    expect(fs.readFileSync(out, 'utf8')).toBe('precious');
    expect(fs.existsSync(tempPathFor(out))).toBe(false);
    const w2 = await MappedRamWriter.create(out, { force: true, configuration: config, blocks: [{ id: 'mem', usedLength: 1 << 20 }] });
    await w2.finish();
    expect(fs.readFileSync(out).subarray(0, 4).toString('latin1')).toBe('QEVM');
  });

  it('fails cleanly when page writes fail, removing the temporary file', async () => {
    const out = path.join(dir, 'fail.mram');
    const w = await MappedRamWriter.create(out, { configuration: config, blocks: [{ id: 'mem', usedLength: 1 << 20 }] });
    await expect(w.writePages('mem', 250, pattern(10, 1))).rejects.toThrow(/outside block mem/);
    await w.abort();
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(tempPathFor(out))).toBe(false);
  });
});
