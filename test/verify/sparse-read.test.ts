// verify on a large, mostly empty mapped-ram file: page-area chunks without a set bit are read only
// where FIEMAP says the file holds data, yet stale data there is still found, and the full digest
// (zeros hashed from a buffer, not read) still equals sha256 of the raw image.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MappedRamWriter, MigrationFile, MappedRamBlock, verifyFile } from '../../src/index.js';
import { dataRanges, overlapsAny, parseFilefrag } from '../../src/io/extents.js';
import { patch, tempDir } from './support.js';
import { makeTempDir } from '../support/qemu.js';

const PAGE = 4096;
const GUEST = 1 << 30;
const dirs = [tempDir('mram-sparse-read-'), makeTempDir('mram-sparse-read-', true)];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const written: Array<[number, Buffer]> = [
  [10, crypto.randomBytes(PAGE)],
  [200_000, crypto.randomBytes(16 * PAGE)],
];

async function makeGuest(dir: string): Promise<string> {
  const file = path.join(dir, 'big.mram');
  const configuration = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: ['mapped-ram'], uuid: null, subsectionOrder: ['configuration/capabilities'] };
  const w = await MappedRamWriter.create(file, { configuration, blocks: [{ id: 'mem', usedLength: GUEST }], directIo: 'off' });
  for (const [page, data] of written) await w.writePages('mem', page, data);
  await w.writeVmdesc(JSON.stringify({ page_size: PAGE, devices: [] }));
  await w.finish();
  return file;
}

/** sha256 of the raw 1 GiB image, built here from the pages written. */
function rawSha256(): string {
  const h = crypto.createHash('sha256');
  const zero = Buffer.alloc(4 << 20);
  let at = 0;
  const zeros = (end: number) => {
    for (; at < end; at += Math.min(zero.length, end - at)) h.update(zero.subarray(0, Math.min(zero.length, end - at)));
  };
  for (const [page, data] of written) {
    zeros(page * PAGE);
    h.update(data);
    at += data.length;
  }
  zeros(GUEST);
  return h.digest('hex');
}

describe('verify on a 1 GiB guest with 68 KiB of data', () => {
  const expected = rawSha256();
  for (const [where, dir] of [['ext4-like file system (FIEMAP)', dirs[0]!], ['tmpfs (no FIEMAP: every chunk is read)', dirs[1]!]] as const) {
    it(`${where}: clean, the full digest of the raw image, and stale data under a clear bit far from any set bit is found`, async () => {
      const file = await makeGuest(dir);
      const clean = await verifyFile(file, { digest: true });
      expect([...clean.errors, ...clean.warnings]).toEqual([]);
      expect(clean.digests.mem).toBe(expected);

      const f = await MigrationFile.open(file);
      const block = f.block('mem') as MappedRamBlock;
      await f.close();
      const stalePage = 150_000;
      patch(file, block.pagesOffset + stalePage * PAGE + 777, [0x5a]);
      const ranges = await dataRanges(file);
      if (ranges) expect(overlapsAny(ranges, block.pagesOffset + stalePage * PAGE, block.pagesOffset + (stalePage + 1) * PAGE)).toBe(true);
      const stale = await verifyFile(file, { digest: true });
      expect(stale.warnings.map((w) => [w.code, w.offset])).toEqual([['W_STALE_DATA', block.pagesOffset + stalePage * PAGE]]);
      // The guest never sees data under a clear bit.
      expect(stale.digests.mem).toBe(expected);
      fs.rmSync(file);
    });
  }
});

describe('filefrag output', () => {
  const out = `Filesystem type is: ef53
File size of x is 1073741824 (1073741824 blocks of 1 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0: 314572800..314576895:          0..         0:      0:             unknown_loc,delalloc
   1: 314576896..314580991:   12345678..  12349773:   4096:             
   2: 943718400..945815551:          0..         0:      0:             last,unknown_loc,delalloc
x: 3 extents found
`;
  it('parses extents in bytes, merging adjacent ones', () => {
    expect(parseFilefrag(out)).toEqual([
      { start: 314572800, end: 314580992 },
      { start: 943718400, end: 945815552 },
    ]);
  });
  it('a file without extents has none; output without the table is not understood', () => {
    expect(parseFilefrag('File size of x is 0 (0 blocks of 1 bytes)\n ext:     logical_offset:\nx: 0 extents found\n')).toEqual([]);
    expect(parseFilefrag('x: FIBMAP/FIEMAP unsupported\n')).toBeNull();
  });
  it('overlapsAny finds a range meeting [start, end) at either edge, and none in a gap', () => {
    const r = parseFilefrag(out)!;
    expect(overlapsAny(r, 0, 314572800)).toBe(false);
    expect(overlapsAny(r, 0, 314572801)).toBe(true);
    expect(overlapsAny(r, 314580991, 314580992)).toBe(true);
    expect(overlapsAny(r, 314580992, 943718400)).toBe(false);
    expect(overlapsAny(r, 945815551, 2 ** 40)).toBe(true);
    expect(overlapsAny(r, 945815552, 2 ** 40)).toBe(false);
  });
});
