// The block list's optional fields, as real QEMU writes them (migration/ram.c, ram_save_setup):
//   idstr, used_length, [be64 page_size: postcopy-ram on and the block's page size ≠ the host's],
//   [be64 guest address: x-ignore-shared], [MappedRamHeader: mapped-ram].
// page_size: committed saves of QEMU 10.0.2 and 11.1.3 (scripts/make-postcopy-sample.ts) of a
// guest with a 2 MiB hugetlb pc-dimm "hp" beside the seeded `mem`. QEMU refuses postcopy-ram with
// mapped-ram, so that field exists only in plain streams. Guest addresses: the x-ignore-shared
// fixtures of both formats.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { runCli } from '../support/cli.js';
import { COMMITTED_DIR, getFixture } from '../support/fixtures.js';
import { makeGuestRam, writeSparse } from '../support/guest-ram.js';
import { describeQemu, describeQemuOn, makeTempDir, startGuest } from '../support/qemu.js';

const tmp = makeTempDir('mram-fields-');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function committedSample(name: string): string {
  const out = path.join(tmp, `${name}.mig`);
  if (!fs.existsSync(out)) writeSparse(out, zlib.gunzipSync(fs.readFileSync(path.join(COMMITTED_DIR, `${name}.mig.gz`))));
  return out;
}

describe('per-block page size under postcopy-ram (plain stream)', () => {
  for (const name of ['postcopy-hugepage-32m', 'postcopy-hugepage-32m.qemu11']) {
    it(`${name}: the hugepage block's entry carries 2 MiB, the others none; every page lands where QEMU had it`, async () => {
      const file = committedSample(name);
      const f = await MigrationFile.open(file);
      try {
        expect(f.complete).toBe(true);
        expect(f.blocks.map((b) => [b.id, b.entry.blockPageSize])).toEqual([
          ['mem', null],
          ['hp', 2 << 20],
          ['/rom@etc/acpi/tables', null],
          ['pc.bios', null],
          ['pc.rom', null],
          ['/rom@etc/table-loader', null],
          ['/rom@etc/acpi/rsdp', null],
        ]);
        expect(f.block('hp').usedLength).toBe(2 << 20);
        // The seeded RAM image, regenerated here from its seed, not read from any file.
        const mem = f.block('mem');
        const got = await mem.read(0, mem.usedLength);
        expect(Buffer.from(got).equals(makeGuestRam(32, 1).buf)).toBe(true);
      } finally {
        await f.close();
      }
      const j = await runCli(['inspect', '--json', file]);
      expect(j.code).toBe(0);
      const blocks = (JSON.parse(j.stdout) as { blocks: Array<{ id: string; blockPageSize: number | null }> }).blocks;
      expect(blocks.find((b) => b.id === 'hp')!.blockPageSize).toBe(2097152);
      expect((await runCli(['verify', '--quick', file])).code).toBe(0);
    });
  }

  it('convert refuses such a stream in one line (QEMU loads mapped-ram only without postcopy-ram)', async () => {
    const r = await runCli(['convert', committedSample('postcopy-hugepage-32m'), path.join(tmp, 'pc.mram')]);
    expect(r.code).toBe(64);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/postcopy-ram/);
  });
});

describeQemu('postcopy-ram and mapped-ram', () => {
  it('QEMU refuses the combination, so a mapped-ram block list never has a page size', async () => {
    const g = await startGuest({ memMiB: 16 });
    try {
      await g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'mapped-ram', state: true }] });
      await expect(g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }] })).rejects.toThrow(/postcopy/i);
    } finally {
      await g.kill();
    }
  });
});

describeQemu('guest address of each block under x-ignore-shared (plain stream)', () => {
  it('entries carry mr_addr: mem at 0, the BIOS ending at 4 GiB, option ROMs at 0xC0000', async () => {
    const f = await MigrationFile.open((await getFixture('stream-xis-32m')).file);
    try {
      expect(f.block('mem').entry.mrAddr).toBe(0);
      expect(f.block('pc.bios').entry.mrAddr).toBe(2 ** 32 - f.block('pc.bios').usedLength);
      expect(f.block('pc.rom').entry.mrAddr).toBe(0xc0000);
    } finally {
      await f.close();
    }
  });
});

describeQemuOn(['11'], 'guest address of each block under x-ignore-shared (mapped-ram)', () => {
  it('entries carry mr_addr before the header; migrated blocks keep their areas', async () => {
    const f = await MigrationFile.open((await getFixture('mr-xis-32m')).file);
    try {
      const bios = f.block('pc.bios');
      expect(bios.entry.mrAddr).toBe(2 ** 32 - bios.usedLength);
      expect(f.block('pc.rom').entry.mrAddr).toBe(0xc0000);
      // The header follows the 8-byte address: entry = u8 len + idstr + be64 length + be64 address.
      expect(bios.entry.mappedRam!.headerOffset).toBe(bios.entry.entryOffset + 1 + 'pc.bios'.length + 8 + 8);
      expect(bios.presentPages).toBeGreaterThan(0);
    } finally {
      await f.close();
    }
  });
});
