// QEMU 10 is the judge of the malformed inputs mram refuses: it refuses them too, or loads
// contents other than the guest's RAM (what mram would have to invent to succeed).
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import path from 'node:path';
import { COMMANDS } from '../../src/format/constants.js';
import { writeMalformed } from '../fixtures/malformed/cases.js';
import { runCli } from '../support/cli.js';
import { getFixture } from '../support/fixtures.js';
import { currentGeneration, describeQemu, loadGuest } from '../support/qemu.js';
import { tempDir } from '../verify/support.js';

describeQemu('QEMU on the malformed inputs mram refuses', () => {
  const dir = tempDir('mram-judge-');
  let files: Record<string, string> = {};
  beforeAll(async () => {
    files = await writeMalformed(dir, ['zero-fill-55', 'part-as-eof', 'page-size-8192', 'page-size-512-bios']);
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('zero-fill-55: QEMU refuses the load ("Found a zero page with value 85")', async () => {
    await expect(loadGuest({ file: files['zero-fill-55']!, mappedRam: false, memMiB: 32 })).rejects.toThrow(/Found a zero page with value 85/);
  }, 120_000);

  it('part-as-eof: QEMU does not restore the guest RAM', async () => {
    const image = fs.readFileSync((await getFixture('stream-32m')).ramImage);
    const loaded = await loadGuest({ file: files['part-as-eof']!, mappedRam: false, memMiB: 32 }).then(
      (r) => r.ram,
      () => null,
    );
    if (loaded) expect(loaded.equals(image)).toBe(false);
  }, 120_000);

  it('page-size-8192 on "mem": QEMU loads, but only the first half of the bitmap (other RAM than the guest had)', async () => {
    const image = fs.readFileSync((await getFixture('mr-32m')).ramImage);
    const load = loadGuest({ file: files['page-size-8192']!, mappedRam: true, memMiB: 32 });
    // QEMU 11 checks the header's page size (spec §7.1); QEMU 10 loads other RAM.
    if (currentGeneration().key === '11') return void (await expect(load).rejects.toThrow(/invalid page_size 8192 \(expected 4096\)/));
    expect((await load).ram.equals(image)).toBe(false);
  }, 120_000);

  // QEMU reads 8x the bitmap of pc.bios; the bytes past it are the zero padding before the page
  // area, so it loads what the guest had. mram refuses anyway (E_PAGE_SIZE): stricter than QEMU.
  it('page-size-512-bios: QEMU loads "mem" as the guest had it (the bits it reads past the bitmap are zero)', async () => {
    const image = fs.readFileSync((await getFixture('mr-32m')).ramImage);
    const load = loadGuest({ file: files['page-size-512-bios']!, mappedRam: true, memMiB: 32 });
    if (currentGeneration().key === '11') return void (await expect(load).rejects.toThrow(/invalid page_size 512 \(expected 4096\)/));
    expect((await load).ram.equals(image)).toBe(true);
  }, 120_000);
});

// Each command that fits the 5 bytes of the SWITCHOVER_START record (length 0), put in its place:
// QEMU loads the file exactly when mram's table says the command loads from a file, and mram's
// convert refuses exactly the others (spec §1). PING needs a return path opened before it.
const SWITCHOVER_START = Buffer.from([0x08, 0x00, 0x0b, 0x00, 0x00]);
const command = (code: number, data: number[] = []) => Buffer.from([0x08, 0, code, 0, data.length, ...data]);
const PING = command(2, [0, 0, 0, 1]);

describeQemu('QEMU on each command in a file', () => {
  const dir = tempDir('mram-judge-cmd-');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const cases = [
    ...[1, 4, 5, 8, 9, 10, 11].map((code) => ({ name: COMMANDS.get(code)!.name, records: command(code), loads: COMMANDS.get(code)!.inFile })),
    { name: 'PING with no OPEN_RETURN_PATH before it', records: PING, loads: false, found: 'PING' },
    { name: 'OPEN_RETURN_PATH then PING (as a postcopy-ram save has them)', records: Buffer.concat([command(1), PING]), loads: true },
  ];
  for (const c of cases) {
    it(`${c.name}: QEMU ${c.loads ? 'loads it' : 'refuses it'}, and mram ${c.loads ? 'converts' : 'refuses'}`, async () => {
      const fx = await getFixture('stream-32m');
      const bytes = fs.readFileSync(fx.file);
      const at = bytes.lastIndexOf(SWITCHOVER_START);
      expect(at).toBeGreaterThan(0);
      const file = path.join(dir, `cmd-${c.name.replace(/\W+/g, '-')}.mig`);
      fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, at), c.records, bytes.subarray(at + SWITCHOVER_START.length)]));
      const loaded = await loadGuest({ file, mappedRam: false, memMiB: 32 }).then(
        (r) => r.ram.equals(fs.readFileSync(fx.ramImage)),
        (e: Error) => e.message,
      );
      if (c.loads) expect(loaded).toBe(true);
      else expect(loaded).toMatch(/load of migration failed|received with no return path|wrong postcopy state|x-colo|deprecated|invalid payload length/);
      const r = await runCli(['convert', file, path.join(dir, 'out.mram'), '--force']);
      expect(r.code).toBe(c.loads ? 0 : 1);
      if (!c.loads) expect(r.stderr).toContain(`found ${c.found ?? c.name}`);
    }, 120_000);
  }
});
