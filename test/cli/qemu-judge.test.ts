// QEMU 10 is the judge of the malformed inputs mram refuses: it refuses them too, or loads
// contents other than the guest's RAM (what mram would have to invent to succeed).
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeMalformed } from '../fixtures/malformed/cases.js';
import { getFixture } from '../support/fixtures.js';
import { describeQemu, loadGuest } from '../support/qemu.js';
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
    const r = await loadGuest({ file: files['page-size-8192']!, mappedRam: true, memMiB: 32 });
    expect(r.ram.equals(image)).toBe(false);
  }, 120_000);

  // QEMU reads 8x the bitmap of pc.bios; the bytes past it are the zero padding before the page
  // area, so it loads what the guest had. mram refuses anyway (E_PAGE_SIZE): stricter than QEMU.
  it('page-size-512-bios: QEMU loads "mem" as the guest had it (the bits it reads past the bitmap are zero)', async () => {
    const image = fs.readFileSync((await getFixture('mr-32m')).ramImage);
    const r = await loadGuest({ file: files['page-size-512-bios']!, mappedRam: true, memMiB: 32 });
    expect(r.ram.equals(image)).toBe(true);
  }, 120_000);
});
