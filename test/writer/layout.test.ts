import { describe, expect, it } from 'vitest';
import { layoutBlocks, placeBlock } from '../../src/writer/layout.js';
import { MappedRamBlock } from '../../src/reader/ram-block.js';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { describeQemu } from '../support/qemu.js';
import { getFixture } from '../support/fixtures.js';

describe('mapped-ram layout', () => {
  it('matches the worked example of the format reference (§3.2)', () => {
    // Header of "pc.ram" at 0x150: its entry starts 1 + 6 + 8 bytes earlier.
    const { blocks, eosOffset } = layoutBlocks(
      [
        { id: 'pc.ram', usedLength: 0x80000000 },
        { id: 'pc.bios', usedLength: 0x40000 },
      ],
      0x150 - 15,
    );
    const [ram, bios] = blocks as [ReturnType<typeof placeBlock>, ReturnType<typeof placeBlock>];
    expect(ram.headerOffset).toBe(0x150);
    expect(ram.pages).toBe(0x80000);
    expect(ram.bitmapOffset).toBe(0x16c);
    expect(ram.bitmapSize).toBe(0x10000);
    expect(ram.pagesOffset).toBe(0x100000);
    expect(ram.end).toBe(0x80100000);
    expect(bios.entryOffset).toBe(0x80100000);
    expect(bios.headerOffset).toBe(0x80100010);
    expect(bios.bitmapOffset).toBe(0x8010002c);
    expect(bios.bitmapSize).toBe(8);
    expect(bios.pagesOffset).toBe(0x80200000);
    expect(eosOffset).toBe(0x80240000);
  });

  it('counts the x-ignore-shared guest address before the header and rounds bitmaps to 64-bit words', () => {
    const l = placeBlock({ id: 'a', usedLength: 65 * 4096, mrAddr: 0 }, 100);
    expect(l.headerOffset).toBe(100 + 1 + 1 + 8 + 8);
    expect(l.bitmapSize).toBe(16);
    expect(l.pagesOffset).toBe(0x100000);
  });

  it('refuses lengths that are not whole pages', () => {
    expect(() => placeBlock({ id: 'a', usedLength: 100 }, 0)).toThrow(/multiple of the page size/);
  });
});

describeQemu('mapped-ram layout vs QEMU', () => {
  it('reproduces every offset of a QEMU mapped-ram file from its block list', async () => {
    const fx = await getFixture('mr-32m');
    const f = await MigrationFile.open(fx.file);
    try {
      const qemu = f.blocks as MappedRamBlock[];
      const ours = layoutBlocks(qemu.map((b) => ({ id: b.id, usedLength: b.usedLength })), qemu[0]!.entry.entryOffset);
      expect(ours.blocks.map((b) => [b.id, b.entryOffset, b.headerOffset, b.bitmapOffset, b.pagesOffset])).toEqual(
        qemu.map((b) => [b.id, b.entry.entryOffset, b.entry.mappedRam!.headerOffset, b.bitmapOffset, b.pagesOffset]),
      );
      const eos = f.sections.find((s) => s.type === 'start' && s.idstr === 'ram')!;
      // START section ends with EOS (8) + footer (5) right after the last page area.
      expect(ours.eosOffset + 13).toBe(eos.offset + eos.length);
    } finally {
      await f.close();
    }
  });
});
