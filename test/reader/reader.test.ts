// The reader against real QEMU files: every expectation is derived from the RAM image QEMU saved
// or from naive decoding of the raw bytes, never from the reader itself.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MigrationFile, MappedRamBlock, FormatError, readerArena, type ChunkOptions, type RamBlock } from '../../src/index.js';
import { FIXTURES, getFixture, fixtureAvailableOffline, type Fixture } from '../support/fixtures.js';
import { describeQemu } from '../support/qemu.js';

const PAGE = 4096;
const MiB = 1 << 20;

function nonZeroPageFlags(ram: Uint8Array): boolean[] {
  const flags: boolean[] = [];
  for (let p = 0; p < ram.length; p += PAGE) {
    let nz = false;
    for (let i = p; i < p + PAGE; i++) if (ram[i] !== 0) { nz = true; break; }
    flags.push(nz);
  }
  return flags;
}

const be32 = (b: Uint8Array, i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
const be64 = (b: Uint8Array, i: number) => be32(b, i) * 2 ** 32 + be32(b, i + 4);

/** The vmdesc the way analyze-migration finds it: the JSON after the last NUL byte. */
function naiveVmdescDevices(raw: Uint8Array): Array<{ name: string; instance_id: number }> {
  const nul = raw.lastIndexOf(0);
  const text = Buffer.from(raw.subarray(raw.indexOf(0x7b, nul))).toString('utf8');
  return JSON.parse(text).devices;
}

async function checkFixture(fx: Fixture): Promise<void> {
  const raw = readFileSync(fx.file);
  const ram = readFileSync(fx.ramImage);
  const meta = fx.meta;
  const file = await MigrationFile.open(fx.file, { offset: meta.prefixByte !== null ? meta.offset : undefined });
  try {
    expect(file.format).toBe(meta.mappedRam ? 'mapped-ram' : 'stream');
    expect(file.streamOffset).toBe(meta.offset);
    expect(be32(raw, file.streamOffset)).toBe(0x5145564d);
    expect(file.complete).toBe(true);
    expect(file.pageSize).toBe(PAGE);

    // Sections tile the stream: contiguous, and their lengths account for every byte to EOF.
    let at = meta.offset;
    for (const s of file.sections) {
      expect(s.offset).toBe(at);
      at += s.length;
    }
    expect(at).toBe(raw.length);

    // Devices equal the vmdesc's list, in order.
    const devices = naiveVmdescDevices(raw);
    expect(file.devices.map((d) => [d.idstr, d.instanceId])).toEqual(devices.map((d) => [d.name, d.instance_id ?? 0]));
    for (const d of file.devices) expect(raw[d.offset]).toBe(0x04);

    // The guest RAM block: present pages and content equal the RAM image QEMU saved.
    const mem = file.block('mem');
    expect(mem.usedLength).toBe(meta.memMiB * MiB);
    const flags = nonZeroPageFlags(ram);
    const zeroPagesSent = meta.zeroPageDetection === 'none';
    expect(mem.presentPages).toBe(zeroPagesSent ? flags.length : flags.filter(Boolean).length);
    if (!zeroPagesSent) for (let p = 0; p < flags.length; p += 97) expect(mem.isPresent(p)).toBe(flags[p]);
    expect(Buffer.from(await mem.read(0, mem.usedLength)).equals(ram)).toBe(true);
    const probe = flags.indexOf(true);
    expect(Buffer.from(await mem.readPage(probe)).equals(ram.subarray(probe * PAGE, (probe + 1) * PAGE))).toBe(true);
    expect(Buffer.from(await mem.read(probe * PAGE + 4000, 300)).equals(ram.subarray(probe * PAGE + 4000, probe * PAGE + 4300))).toBe(true);

    // Chunk by chunk, each way of reading gives QEMU's RAM image: reads in flight, and one at a time on
    // the calling thread (verify's way) in chunks of 1 MiB.
    for (const opts of [{}, { depth: 1 }, { blocking: true, chunkBytes: MiB }] satisfies ChunkOptions[]) {
      expect((await chunkedContent(mem, opts)).equals(ram), JSON.stringify(opts)).toBe(true);
    }

    // Runs of present pages agree with isPresent.
    let runPages = 0;
    for (const run of mem.presentRuns()) {
      expect(mem.isPresent(run.start)).toBe(true);
      expect(mem.isPresent(run.start + run.count - 1)).toBe(true);
      if (run.start > 0) expect(mem.isPresent(run.start - 1)).toBe(false);
      runPages += run.count;
    }
    expect(runPages).toBe(mem.presentPages);

    if (meta.mappedRam) {
      // Every block follows QEMU's layout rule, checked against the raw header bytes.
      let prevEnd: number | null = null;
      for (const b of file.blocks) {
        expect(b).toBeInstanceOf(MappedRamBlock);
        const h = b.entry.mappedRam!;
        if (prevEnd !== null) expect(b.entry.entryOffset).toBe(prevEnd);
        expect(raw[b.entry.entryOffset]).toBe(b.id.length);
        expect(be32(raw, h.headerOffset)).toBe(1);
        expect(be64(raw, h.headerOffset + 4)).toBe(PAGE);
        expect(be64(raw, h.headerOffset + 12)).toBe(h.headerOffset + 28);
        const bitmapBytes = Math.ceil(b.pages / 64) * 8;
        expect(be64(raw, h.headerOffset + 20)).toBe(Math.ceil((h.headerOffset + 28 + bitmapBytes) / MiB) * MiB);
        expect(h.bitmapOffset).toBe(be64(raw, h.headerOffset + 12));
        expect(h.pagesOffset).toBe(be64(raw, h.headerOffset + 20));
        prevEnd = h.pagesOffset + b.usedLength;
      }
      // EOS right after the last page area.
      expect(be64(raw, prevEnd!)).toBe(0x10);
    }
  } finally {
    await file.close();
  }
}

/** A block's guest-visible content gathered from chunks(); checks the chunks tile the block. */
async function chunkedContent(block: RamBlock, opts: ChunkOptions): Promise<Buffer> {
  const content = Buffer.alloc(block.usedLength);
  let next = 0;
  const arena = readerArena(opts);
  for await (const c of block.chunks(arena, opts)) {
    expect(c.firstPage).toBe(next);
    content.set(c.data, c.firstPage * block.pageSize);
    next = c.firstPage + c.pages;
  }
  arena.reset();
  expect(next).toBe(block.pages);
  return content;
}

const committed = Object.values(FIXTURES).filter((f) => f.commit).map((f) => f.name);
const generated = Object.values(FIXTURES).filter((f) => !f.commit).map((f) => f.name);

describe('reader on committed QEMU fixtures', () => {
  for (const name of committed) {
    it.skipIf(!fixtureAvailableOffline(name))(name, async () => checkFixture(await getFixture(name)));
  }
});

describeQemu('reader on larger QEMU fixtures', () => {
  // A 256 MiB save is generated on first use (TCG, per QEMU generation): minutes on a loaded machine.
  for (const name of generated) it(name, async () => checkFixture(await getFixture(name)), 300_000);
});

describe('reader edge cases', () => {
  it('the mapped-ram and plain-stream saves of one guest hold the same blocks and RAM', async () => {
    const a = await MigrationFile.open((await getFixture('mr-32m')).file);
    const b = await MigrationFile.open((await getFixture('stream-32m')).file);
    try {
      expect(a.blocks.map((x) => [x.id, x.usedLength])).toEqual(b.blocks.map((x) => [x.id, x.usedLength]));
      for (const x of a.blocks) {
        const y = b.block(x.id);
        expect(Buffer.from(await x.read(0, x.usedLength)).equals(await y.read(0, y.usedLength))).toBe(true);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('finds the stream after a libvirt header and decodes its fields', async () => {
    const fx = await getFixture('libvirt-mr-32m');
    const f = await MigrationFile.open(fx.file);
    try {
      expect(f.libvirt).not.toBeNull();
      expect(f.libvirt!.complete).toBe(true);
      expect(f.libvirt!.format).toBe(6);
      expect(f.libvirt!.dataOffset).toBe(fx.meta.offset);
      expect(f.libvirt!.xml).toContain('<domain');
      expect(f.streamOffset).toBe(92 + fx.meta.libvirt!.dataLen);
    } finally {
      await f.close();
    }
    const part = await MigrationFile.open((await getFixture('libvirt-part-mr-32m')).file);
    expect(part.libvirt!.complete).toBe(false);
    await part.close();
  });

  it('needs --offset for a stream behind a foreign prefix, and names the offset when it is wrong', async () => {
    const fx = await getFixture('mr-off-32m');
    const err = await MigrationFile.open(fx.file).catch((e) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).offset).toBe(0);
    expect(String(err.message)).toMatch(/QEVM/);
  });
});

describe('reader inputs', () => {
  it('reads from an open descriptor and leaves it open', async () => {
    const { openSync, closeSync, fstatSync } = await import('node:fs');
    const fx = await getFixture('mr-32m');
    const fd = openSync(fx.file, 'r');
    try {
      const f = await MigrationFile.open(fd);
      expect(f.path).toBe(`fd ${fd}`);
      expect(f.block('mem').presentPages).toBe(fx.meta.ramNonZeroPages);
      await f.close();
      expect(fstatSync(fd).size).toBe(f.size);
    } finally {
      closeSync(fd);
    }
  });

  it('refuses a directory with a one-line reason, not a stack trace', async () => {
    const { runCli } = await import('../support/cli.js');
    const r = await runCli(['inspect', '/tmp']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mram inspect: \/tmp: .*not a regular file/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});
