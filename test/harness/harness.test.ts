// Proves the QEMU test harness itself: fixtures round-trip through real QEMU byte for byte.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getFixture, FIXTURES, type Fixture } from '../support/fixtures.js';
import { makeGuestRam, nonZeroPages, PAGE, fileSizes, dirtierBootSector, writeGuestRam } from '../support/guest-ram.js';
import { readLibvirtHeader, buildLibvirtHeader, LIBVIRT_HEADER_SIZE } from '../support/libvirt-header.js';
import { describeQemu, killAllGuests, liveQemuCount, loadGuest, makeTempDir, saveGuest, startGuest, QmpError } from '../support/qemu.js';

const QEVM = Buffer.from('QEVM', 'latin1');

function readAt(file: string, offset: number, len: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(len);
    fs.readSync(fd, b, 0, len, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

async function roundTrip(fx: Fixture): Promise<void> {
  const m = fx.meta;
  const res = await loadGuest({
    file: fx.file,
    mappedRam: m.mappedRam,
    multifd: m.multifd || undefined,
    directIo: m.directIo || undefined,
    offset: m.offset || undefined,
    memMiB: m.memMiB,
  });
  const expected = fs.readFileSync(fx.ramImage);
  expect(res.ram.length).toBe(m.memMiB * 2 ** 20);
  // Buffer.equals first (fast); on mismatch report the first differing page
  if (!res.ram.equals(expected)) {
    let p = 0;
    while (res.ram.compare(expected, p, p + PAGE, p, p + PAGE) === 0) p += PAGE;
    expect.fail(`${fx.name}: destination RAM differs from the source image, first at page ${p / PAGE}`);
  }
  expect(res.stats.status).toBe('completed');
}

afterAll(async () => {
  // every test cleans up after itself; anything left here is a harness bug
  expect(await killAllGuests()).toBe(0);
  expect(liveQemuCount()).toBe(0);
});

describe('guest-ram patterns and libvirt header (no QEMU)', () => {
  it('is deterministic from the seed and has every page kind', () => {
    const a = makeGuestRam(8, 7);
    const b = makeGuestRam(8, 7);
    const c = makeGuestRam(8, 8);
    expect(a.buf.equals(b.buf)).toBe(true);
    expect(a.buf.equals(c.buf)).toBe(false);
    const s = a.summary;
    expect(s.random).toBeGreaterThan(0);
    expect(s.firstByte).toBeGreaterThan(0);
    expect(s.lastByte).toBeGreaterThan(0);
    expect(s.midByte).toBeGreaterThan(0);
    expect(nonZeroPages(a.buf, PAGE)).toBe(s.nonZeroPages);
    expect(s.nonZeroPages).toBe(s.random + s.firstByte + s.lastByte + s.midByte);
    expect(s.nonZeroPages).toBeLessThan(s.pages / 4);
  });

  it('writes sparse RAM files', () => {
    const dir = makeTempDir('mram-t-', true);
    try {
      const f = path.join(dir, 'ram');
      const s = writeGuestRam(f, 16, 3);
      const sz = fileSizes(f);
      expect(sz.apparent).toBe(16 << 20);
      expect(sz.allocated).toBeLessThanOrEqual(s.nonZeroPages * PAGE + 64 * 1024);
      expect(fs.readFileSync(f).equals(makeGuestRam(16, 3).buf)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('boot sector has the 55AA signature', () => {
    const b = dirtierBootSector();
    expect(b.length).toBe(512);
    expect(b[510]).toBe(0x55);
    expect(b[511]).toBe(0xaa);
  });

  it('libvirt header layout', () => {
    const h = buildLibvirtHeader({ part: true, cookie: '<cookie/>' });
    const f = readLibvirtHeader(h.bytes);
    expect(f.magic).toBe('LibvirtQemudPart');
    expect(f.version).toBe(2);
    expect(f.format).toBe(6);
    expect(h.bytes.length).toBe(LIBVIRT_HEADER_SIZE + f.dataLen);
    expect(h.qemuOffset).toBe(0x11921);
    expect(h.qemuOffset % 4096).not.toBe(0);
    expect(h.bytes.toString('utf8', LIBVIRT_HEADER_SIZE + f.cookieOffset, LIBVIRT_HEADER_SIZE + f.cookieOffset + 9)).toBe('<cookie/>');
    expect(f.xml).toContain('<domain');
  });
});

describeQemu('QMP client and QEMU driver', () => {
  it('reports QEMU error desc and cleans up', async () => {
    const g = await startGuest({ memMiB: 16 });
    try {
      expect((await g.qmp.execute<{ status: string }>('query-status')).status).toBe('prelaunch');
      const err = await g.qmp.execute('no-such-command').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QmpError);
      expect((err as QmpError).desc).toMatch(/no-such-command/);
    } finally {
      await g.kill();
    }
    expect(g.proc.exitCode !== null || g.proc.signalCode !== null).toBe(true);
  });

  it('surfaces a failed migration with QEMU error text', async () => {
    const dir = makeTempDir('mram-t-', true);
    try {
      const ram = path.join(dir, 'ram');
      writeGuestRam(ram, 16, 1);
      await expect(saveGuest({ ramPath: ram, out: '/nonexistent-dir/x.mig', mappedRam: true })).rejects.toThrow(
        /failed|No such file/i,
      );
      const load = loadGuest({ file: path.join(dir, 'missing.mig'), mappedRam: true, memMiB: 16 });
      await expect(load).rejects.toThrow(/No such file|failed|died/i);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exec: URIs (pipes) round-trip a stream', async () => {
    const dir = makeTempDir('mram-t-');
    const shm = makeTempDir('mram-t-', true);
    try {
      const ram = path.join(shm, 'ram');
      writeGuestRam(ram, 16, 5);
      const out = path.join(dir, 'pipe.mig');
      const s = await saveGuest({ ramPath: ram, uri: `exec:cat > ${out}`, mappedRam: false });
      expect(s.runState).toBe('postmigrate');
      expect(readAt(out, 0, 4).equals(QEVM)).toBe(true);
      const l = await loadGuest({ uri: `exec:cat ${out}`, mappedRam: false, memMiB: 16 });
      expect(l.ram.equals(fs.readFileSync(ram))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });
});

const ROUND_TRIP = Object.values(FIXTURES)
  .filter((s) => s.memMiB === 32)
  .map((s) => s.name);

describeQemu('fixtures round-trip through QEMU', () => {
  it.each(ROUND_TRIP)('%s loads back byte-identical', async (name) => {
    const fx = await getFixture(name);
    expect(fx.meta.qemuVersion).toMatch(/^\d+\.\d+/);
    await roundTrip(fx);
  });

  it('mr-256m (multi-word bitmaps) loads back byte-identical', async () => {
    await roundTrip(await getFixture('mr-256m'));
  });

  it('mapped-ram and stream variants share one RAM image; counts derive from the image', async () => {
    const mr = await getFixture('mr-32m');
    const st = await getFixture('stream-32m');
    const a = fs.readFileSync(mr.ramImage);
    const b = fs.readFileSync(st.ramImage);
    expect(a.equals(b)).toBe(true);
    expect(nonZeroPages(a, PAGE)).toBe(mr.meta.ramNonZeroPages);
    // QEMU counts pages of all RAM blocks (mem + pc.bios ...): at least the mem block's non-zero pages
    expect(mr.meta.stats.ram!.normal).toBeGreaterThanOrEqual(mr.meta.ramNonZeroPages);
  });

  it('magic at the start of plain and mapped-ram files; mapped-ram is sparse and says so', async () => {
    for (const name of ['mr-32m', 'mr-mfd-32m', 'mr-dio-32m', 'stream-32m']) {
      const fx = await getFixture(name);
      expect(readAt(fx.file, 0, 4).equals(QEVM)).toBe(true);
      const head = readAt(fx.file, 0, 4096);
      expect(head.includes('mapped-ram')).toBe(fx.meta.mappedRam);
      if (fx.meta.mappedRam) {
        const sz = fileSizes(fx.file);
        expect(sz.apparent).toBeGreaterThan(fx.meta.memMiB << 20);
        expect(sz.allocated).toBeLessThan(sz.apparent / 4);
      }
    }
  });

  it("offset fixture: 'X' prefix untouched, QEVM at the offset", async () => {
    const fx = await getFixture('mr-off-32m');
    const off = fx.meta.offset;
    expect(off).toBe(0x11921);
    const prefix = readAt(fx.file, 0, off);
    expect(prefix.every((c) => c === 0x58)).toBe(true);
    expect(readAt(fx.file, off, 4).equals(QEVM)).toBe(true);
  });

  it.each([
    ['libvirt-mr-32m', 'LibvirtQemudSave'],
    ['libvirt-part-mr-32m', 'LibvirtQemudPart'],
  ])('%s: libvirt header at byte 0, QEVM at 92 + data_len', async (name, magic) => {
    const fx = await getFixture(name);
    const h = readLibvirtHeader(readAt(fx.file, 0, 0x20000));
    expect(h.magic).toBe(magic);
    expect(h.version).toBe(2);
    expect(h.format).toBe(6);
    const qemuOff = LIBVIRT_HEADER_SIZE + h.dataLen;
    expect(qemuOff).toBe(fx.meta.offset);
    expect(qemuOff % 4096).not.toBe(0);
    expect(readAt(fx.file, qemuOff, 4).equals(QEVM)).toBe(true);
    expect(readAt(fx.file, qemuOff - 4, 4).equals(Buffer.alloc(4))).toBe(true);
  });

  it('zero-page-detection=none writes every page', async () => {
    const fx = await getFixture('stream-zpd-none-32m');
    const ram = fx.meta.stats.ram!;
    expect(ram.duplicate).toBe(0);
    expect(ram.normal * PAGE).toBe(ram.total);
    expect(fs.statSync(fx.file).size).toBeGreaterThan(ram.total);
  });

  it('live saves re-send pages (running guest)', async () => {
    const mr = await getFixture('mr-live-32m');
    const st = await getFixture('stream-live-32m');
    for (const fx of [mr, st]) {
      expect(fx.meta.running).toBe(true);
      expect(fx.meta.sourceRunState).toBe('postmigrate');
      // the boot sector loop ran: the dirtied range is not all zero
      const img = fs.readFileSync(fx.ramImage);
      expect(nonZeroPages(img.subarray(0x10000, 0xa0000), PAGE)).toBeGreaterThan(0);
      // more normal pages were sent than there are distinct pages in the whole guest image
      expect(fx.meta.stats.ram!.normal).toBeGreaterThan(nonZeroPages(img, PAGE));
      // the save iterated: several dirty-bitmap syncs (setup + >= 4 rounds + completion)
      expect(fx.meta.stats.ram!['dirty-sync-count']).toBeGreaterThanOrEqual(5);
      // every page of the dirtied range was sent at least twice
      expect(fx.meta.stats.ram!.normal - nonZeroPages(img, PAGE)).toBeGreaterThanOrEqual(0xa0000 / PAGE - 0x10000 / PAGE);
    }
  });
});
