// The content digest (spec/format.md §12) on QEMU's own files: the same guest RAM saved as mapped-ram,
// plain stream, libvirt-wrapped, with zero pages written or not, and in qcow2 snapshots gives one value;
// the `mem` block's value is recomputed here from QEMU's RAM image with node:crypto alone.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentDigest, MappedRamBlock, MigrationFile, verifyFile, readerArena } from '../../src/index.js';
import { runCli } from '../support/cli.js';
import { getFixture } from '../support/fixtures.js';
import { expectedRam, getQcow2Fixture } from '../support/qcow2.js';

const PAGE = 4096;
const MAGIC = 'mram content digest v1\n';

const be = (n: number, bytes: number) => {
  const b = Buffer.alloc(bytes);
  if (bytes === 8) b.writeBigUInt64BE(BigInt(n));
  else b.writeUInt32BE(n);
  return b;
};

/** The block digest straight from the definition: runs of non-zero pages and their bytes, page by page. */
function expectedBlockDigest(id: string, ram: Buffer): string {
  const zero = Buffer.alloc(PAGE);
  const runs = createHash('sha256');
  const data = createHash('sha256');
  let start = -1;
  const pages = ram.length / PAGE;
  for (let p = 0; p <= pages; p++) {
    const nonZero = p < pages && !ram.subarray(p * PAGE, (p + 1) * PAGE).equals(zero);
    if (nonZero) data.update(ram.subarray(p * PAGE, (p + 1) * PAGE));
    if (nonZero && start < 0) start = p;
    if (!nonZero && start >= 0) {
      runs.update(Buffer.concat([be(start, 8), be(p - start, 8)]));
      start = -1;
    }
  }
  const head = Buffer.concat([Buffer.from([id.length]), Buffer.from(id, 'latin1'), be(ram.length, 8), be(PAGE, 4), Buffer.from([0])]);
  return createHash('sha256').update(head).update(runs.digest()).update(data.digest()).digest('hex');
}

/** The guest-wide value from block digests, by the definition (idstr byte order). */
function combine(blocks: Record<string, string>): string {
  const h = createHash('sha256').update(MAGIC);
  for (const id of Object.keys(blocks).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) h.update(Buffer.from(blocks[id]!, 'hex'));
  return h.digest('hex');
}

interface ContentJson {
  ok: boolean;
  contentDigest: { digest: string; blocks: Record<string, string> } | null;
}

async function verifyContent(file: string, ...extra: string[]): Promise<ContentJson> {
  const r = await runCli(['verify', '--json', '--content-digest', file, ...extra]);
  expect(r.code === 0 || r.code === 3, r.stderr).toBe(true);
  return JSON.parse(r.stdout) as ContentJson;
}

describe('content digest', () => {
  const sameGuest = ['mr-32m', 'stream-32m', 'libvirt-mr-32m', 'mr-mfd-32m', 'mr-zpd-none-32m', 'stream-zpd-none-32m'];

  it('the same guest saved as mapped-ram, stream, libvirt-wrapped, multifd and with zero pages written: one value, mem as recomputed from the RAM image', async () => {
    const expectedMem = expectedBlockDigest('mem', fs.readFileSync((await getFixture('mr-32m')).ramImage));
    const values = new Set<string>();
    for (const name of sameGuest) {
      const fx = await getFixture(name);
      const offset = fx.meta.libvirt ? [] : ['--offset', String(fx.meta.offset)];
      const c = (await verifyContent(fx.file, ...offset)).contentDigest!;
      expect(c.blocks.mem, name).toBe(expectedMem);
      expect(c.digest, name).toBe(combine(c.blocks));
      values.add(c.digest);
    }
    expect(values.size).toBe(1);
  });

  it('the library call on an opened file gives the value verify prints', async () => {
    for (const name of ['mr-32m', 'stream-32m']) {
      const fx = await getFixture(name);
      const f = await MigrationFile.open(fx.file);
      try {
        const lib = await contentDigest(f, readerArena());
        expect(lib).toEqual((await verifyFile(fx.file, { contentDigest: true })).contentDigest);
      } finally {
        await f.close();
      }
    }
  });

  it('different RAM gives a different value (a live save whose guest ran), equal to its own recomputation', async () => {
    const live = await getFixture('mr-live-32m');
    const c = (await verifyContent(live.file)).contentDigest!;
    expect(c.blocks.mem).toBe(expectedBlockDigest('mem', fs.readFileSync(live.ramImage)));
    const still = (await verifyContent((await getFixture('mr-32m')).file)).contentDigest!;
    expect(c.digest).not.toBe(still.digest);
    expect(c.blocks.mem).not.toBe(still.blocks.mem);
  });

  it('a page changed in one byte changes the value; zero pages written under set bits do not', async () => {
    const fx = await getFixture('mr-32m');
    const ram = fs.readFileSync(fx.ramImage);
    const base = expectedBlockDigest('mem', ram);
    const changed = Buffer.from(ram);
    changed[PAGE * 100 + 7] ^= 1;
    expect(expectedBlockDigest('mem', changed)).not.toBe(base);
    // mr-zpd-none-32m stores every zero page with its bit set: same value as the file without them (first test).
    const zpd = await verifyFile((await getFixture('mr-zpd-none-32m')).file, { contentDigest: true });
    expect(zpd.warnings.map((w) => w.code)).toContain('W_ZERO_PAGE_SET');
    expect(zpd.contentDigest!.blocks.mem).toBe(base);
  });

  it('qcow2 snapshots: stream and mapped-ram vmstate of one guest agree on every block but mem, whose value is recomputed', async () => {
    // Committed under test/fixtures (made by QEMU 11).
    const { image, meta } = await getQcow2Fixture('snap-v3');
    const a = (await verifyFile(image, { snapshot: 'stream-a', contentDigest: true })).contentDigest!;
    const b = (await verifyFile(image, { snapshot: 'mr-b', contentDigest: true })).contentDigest!;
    expect(a.blocks.mem).toBe(expectedBlockDigest('mem', expectedRam(meta, 'stream-a')));
    expect(b.blocks.mem).toBe(expectedBlockDigest('mem', expectedRam(meta, 'mr-b')));
    const others = (c: typeof a) => Object.entries(c.blocks).filter(([id]) => id !== 'mem');
    expect(others(a).length).toBeGreaterThan(0);
    expect(others(a)).toEqual(others(b));
    expect(a.digest).not.toBe(b.digest);
  });

  it('a file cut inside a page area has no content digest, and says so', async () => {
    const fx = await getFixture('mr-32m');
    const f = await MigrationFile.open(fx.file);
    const mem = f.block('mem') as MappedRamBlock;
    await f.close();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-content-'));
    try {
      const cut = path.join(dir, 'cut.mig');
      fs.writeFileSync(cut, fs.readFileSync(fx.file).subarray(0, mem.pagesOffset + 4096 * 100));
      const r = await runCli(['verify', '--json', '--content-digest', cut]);
      expect(JSON.parse(r.stdout).contentDigest).toBeNull();
      const text = await runCli(['verify', '--content-digest', cut]);
      expect(text.stdout).toContain('no content digest: the RAM of some block is not all in the file');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--quick refuses --content-digest', async () => {
    const r = await runCli(['verify', '--quick', '--content-digest', (await getFixture('mr-32m')).file]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('--content-digest');
  });
});
