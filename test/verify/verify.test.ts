// mram verify on real QEMU files: clean ones pass with the guest's RAM digest, each injected defect is named.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECK_CODES } from '../../src/verify/codes.js';
import { writeSparse } from '../support/guest-ram.js';
import { getFixture, type Fixture } from '../support/fixtures.js';
import { runCli } from '../support/cli.js';
import { be32, be64, copyOf, geometry, patch, tempDir } from './support.js';

interface Report {
  ok: boolean;
  errors: Array<{ code: string; offset: number; message: string }>;
  warnings: Array<{ code: string; offset: number; message: string }>;
  digests: Record<string, string>;
}

async function verifyJson(file: string, ...extra: string[]): Promise<{ code: number; report: Report; stderr: string }> {
  const r = await runCli(['verify', '--json', file, ...extra]);
  return { code: r.code, report: JSON.parse(r.stdout) as Report, stderr: r.stderr };
}

const codes = (r: Report) => [...r.errors, ...r.warnings].map((f) => f.code);

describe('verify: clean QEMU files', () => {
  const clean = ['mr-32m', 'mr-mfd-32m', 'mr-dio-32m', 'mr-off-32m', 'stream-32m', 'stream-zpd-none-32m', 'libvirt-mr-32m', 'mr-live-32m', 'stream-live-32m'];
  for (const name of clean) {
    it(`${name}: exit 0 and the digest of block "mem" is the sha256 of the guest RAM image`, async () => {
      const fx = await getFixture(name);
      const offset = fx.meta.libvirt ? [] : ['--offset', String(fx.meta.offset)];
      const { code, report } = await verifyJson(fx.file, '--digest', ...offset);
      expect(codes(report)).toEqual([]);
      expect(code).toBe(0);
      expect(report.ok).toBe(true);
      expect(report.digests.mem).toBe(fx.meta.ramSha256);
    });
  }

  it('mapped-ram and plain-stream saves of the same guest have equal digests for every block', async () => {
    const a = await verifyJson((await getFixture('mr-32m')).file, '--digest');
    const b = await verifyJson((await getFixture('stream-32m')).file, '--digest');
    expect(Object.keys(a.report.digests).length).toBeGreaterThan(1);
    expect(a.report.digests).toEqual(b.report.digests);
  });

  it('zero-page-detection=none: exit 3, only W_ZERO_PAGE_SET (QEMU wrote zero pages with their bits set)', async () => {
    const { code, report } = await verifyJson((await getFixture('mr-zpd-none-32m')).file, '--digest');
    expect(new Set(codes(report))).toEqual(new Set(['W_ZERO_PAGE_SET']));
    expect(code).toBe(3);
    expect(report.digests.mem).toBe((await getFixture('mr-zpd-none-32m')).meta.ramSha256);
  });

  it('libvirt Part magic: E_LIBVIRT_INCOMPLETE, exit 2', async () => {
    const { code, report } = await verifyJson((await getFixture('libvirt-part-mr-32m')).file);
    expect(codes(report)).toEqual(['E_LIBVIRT_INCOMPLETE']);
    expect(code).toBe(2);
  });

  it('--quick reads no pages and still passes; human output ends with a verdict', async () => {
    const r = await runCli(['verify', '--quick', (await getFixture('mr-32m')).file]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/no errors were found/);
  });

  it('a file that is not a migration stream: exit 1; a missing file: exit 1; bad usage: 64', async () => {
    const dir = tempDir();
    const junk = path.join(dir, 'junk');
    fs.writeFileSync(junk, 'hello world, not QEVM');
    expect((await runCli(['verify', junk])).code).toBe(1);
    expect((await runCli(['verify', path.join(dir, 'missing')])).code).toBe(1);
    expect((await runCli(['verify'])).code).toBe(64);
    expect((await runCli(['verify', '--quick', '--digest', junk])).code).toBe(64);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every code in codes.ts has a severity matching its prefix', () => {
    for (const [code, c] of Object.entries(CHECK_CODES)) expect(c.severity).toBe(code.startsWith('E_') ? 'error' : 'warning');
  });
});

describe('verify: injected defects are reported under their code', () => {
  let fx: Fixture;
  let g: Awaited<ReturnType<typeof geometry>>;
  let dir: string;
  let n = 0;
  beforeAll(async () => {
    fx = await getFixture('mr-32m');
    g = await geometry(fx.file);
    dir = tempDir();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mem = () => g.blocks.find((b) => b.id === 'mem')!;
  const block = (id: string) => g.blocks.find((b) => b.id === id)!;
  const eof = () => g.sections.find((s) => s.type === 'eof')!;
  const fresh = () => copyOf(fx.file, dir, `case-${n++}.mig`);

  async function expectCode(file: string, code: string, exit = CHECK_CODES[code as keyof typeof CHECK_CODES].severity === 'error' ? 2 : 3) {
    const r = await verifyJson(file);
    expect(codes(r.report)).toContain(code);
    expect(r.code).toBe(exit);
    for (const f of [...r.report.errors, ...r.report.warnings]) {
      expect(Number.isSafeInteger(f.offset)).toBe(true);
      expect(f.message.length).toBeGreaterThan(0);
    }
    return r.report;
  }

  it('E_MAGIC (exit 1)', async () => {
    const f = fresh();
    patch(f, 0, [0x51, 0x45, 0x56, 0x58]);
    await expectCode(f, 'E_MAGIC', 1);
  });
  it('E_VERSION', async () => {
    const f = fresh();
    patch(f, 4, be32(2));
    await expectCode(f, 'E_VERSION');
  });
  it('E_HEADER_VERSION', async () => {
    const f = fresh();
    patch(f, mem().headerOffset, be32(2));
    await expectCode(f, 'E_HEADER_VERSION');
  });
  it('E_PAGE_SIZE', async () => {
    const f = fresh();
    patch(f, mem().headerOffset + 4, be64(8192n));
    await expectCode(f, 'E_PAGE_SIZE');
  });
  it('E_PAGES_ALIGNMENT and W_PAGES_ALIGNMENT', async () => {
    const f = fresh();
    patch(f, mem().headerOffset + 20, be64(BigInt(mem().pagesOffset + 1)));
    await expectCode(f, 'E_PAGES_ALIGNMENT');
    const w = fresh();
    patch(w, mem().headerOffset + 20, be64(BigInt(mem().pagesOffset + 4096)));
    const r = await verifyJson(w);
    expect(codes(r.report)).toContain('W_PAGES_ALIGNMENT');
  });
  it('E_AREA_OUTSIDE_FILE', async () => {
    const f = fresh();
    const last = g.blocks.at(-1)!;
    patch(f, last.headerOffset + 20, be64(BigInt(g.size + (1 << 20)) & ~0xfffffn));
    await expectCode(f, 'E_AREA_OUTSIDE_FILE');
  });
  it('E_AREA_OVERLAP (a bitmap inside another block\'s page area)', async () => {
    const f = fresh();
    patch(f, block('pc.bios').headerOffset + 12, be64(BigInt(mem().pagesOffset + 4096)));
    await expectCode(f, 'E_AREA_OVERLAP');
  });
  it('E_BITMAP_OUTSIDE_FILE', async () => {
    const f = fresh();
    patch(f, mem().headerOffset + 12, be64(BigInt(g.size - 8)));
    await expectCode(f, 'E_BITMAP_OUTSIDE_FILE');
  });
  it('E_BITMAP_TRAILING_BITS', async () => {
    const f = fresh();
    const b = g.blocks.find((x) => x.pages % 64 !== 0)!;
    patch(f, b.bitmapOffset + Math.ceil(b.pages / 64) * 8 - 1, [0x80]);
    await expectCode(f, 'E_BITMAP_TRAILING_BITS');
  });
  it('E_BITMAP_NOT_WRITTEN', async () => {
    const f = fresh();
    patch(f, mem().bitmapOffset, new Uint8Array(Math.ceil(mem().pages / 64) * 8));
    const r = await expectCode(f, 'E_BITMAP_NOT_WRITTEN');
    expect(codes(r)).not.toContain('W_STALE_DATA');
  });
  it('W_STALE_DATA (data under a clear bit), exit 3', async () => {
    const f = fresh();
    patch(f, mem().pagesOffset + mem().absent[5]! * 4096 + 17, [0xab]);
    await expectCode(f, 'W_STALE_DATA', 3);
  });
  it('W_ZERO_PAGE_SET (written zeros under a set bit), exit 3', async () => {
    const f = fresh();
    patch(f, mem().pagesOffset + mem().present[3]! * 4096, new Uint8Array(4096));
    await expectCode(f, 'W_ZERO_PAGE_SET', 3);
  });
  it('E_HOLE_UNDER_SET_BIT (set-bit pages turned into holes by a sparse copy)', async () => {
    const buf = fs.readFileSync(fx.file);
    for (const p of mem().present.slice(0, 64)) buf.fill(0, mem().pagesOffset + p * 4096, mem().pagesOffset + (p + 1) * 4096);
    const f = path.join(dir, `holes-${n++}.mig`);
    writeSparse(f, buf);
    const r = await expectCode(f, 'E_HOLE_UNDER_SET_BIT');
    expect(codes(r)).toContain('W_ZERO_PAGE_SET');
  });
  it('E_SHORT_FILE (file cut inside the page area)', async () => {
    const f = fresh();
    const cut = mem().pagesOffset + mem().present.at(-1)! * 4096;
    fs.truncateSync(f, cut);
    const r = await expectCode(f, 'E_SHORT_FILE');
    expect(codes(r)).toContain('E_TRUNCATED');
  });
  it('E_NO_EOF and W_NO_VMDESC', async () => {
    const f = fresh();
    fs.truncateSync(f, eof().offset);
    await expectCode(f, 'E_NO_EOF');
    const w = fresh();
    fs.truncateSync(w, eof().offset + 1);
    await expectCode(w, 'W_NO_VMDESC', 3);
  });
  it('E_VMDESC_JSON', async () => {
    const f = fresh();
    patch(f, g.size - 1, [0x20]);
    await expectCode(f, 'E_VMDESC_JSON');
  });
  it('E_DEVICE_MISMATCH', async () => {
    const f = fresh();
    patch(f, g.devices[0]!.offset + 6, [0x5a]);
    await expectCode(f, 'E_DEVICE_MISMATCH');
  });
  it('E_FOOTER', async () => {
    const d = g.devices[0]!;
    const f = fresh();
    patch(f, d.offset + d.length - 5, [0x7f]);
    await expectCode(f, 'E_FOOTER');
    const id = fresh();
    patch(id, d.offset + d.length - 1, [0xee]);
    await expectCode(id, 'E_FOOTER');
  });
  it('E_FRAMING (unknown record type)', async () => {
    const f = fresh();
    patch(f, g.devices[1]!.offset, [0x55]);
    await expectCode(f, 'E_FRAMING');
  });
  it('E_CONFIG_MAPPED_RAM (capability renamed, blocks still carry headers)', async () => {
    const f = fresh();
    const head = fs.readFileSync(f).subarray(0, 4096);
    const at = head.indexOf('mapped-ram');
    expect(at).toBeGreaterThan(0);
    patch(f, at + 9, [0x58]);
    await expectCode(f, 'E_CONFIG_MAPPED_RAM');
  });
  it('E_CONFIG_MAPPED_RAM (capability on, blocks without headers): a plain stream behind a mapped-ram configuration', async () => {
    const mr = fs.readFileSync(fx.file);
    const st = await getFixture('stream-32m');
    const sg = await geometry(st.file);
    const mrConfig = g.sections.find((s) => s.type === 'configuration')!;
    const stConfig = sg.sections.find((s) => s.type === 'configuration')!;
    const spliced = Buffer.concat([mr.subarray(0, mrConfig.offset + mrConfig.length), fs.readFileSync(st.file).subarray(stConfig.offset + stConfig.length)]);
    const f = path.join(dir, `spliced-${n++}.mig`);
    fs.writeFileSync(f, spliced);
    const r = await expectCode(f, 'E_CONFIG_MAPPED_RAM');
    expect(codes(r).filter((c) => c !== 'E_CONFIG_MAPPED_RAM')).toEqual([]);
  });
  it('names from the file are escaped: an idstr with ESC and newline prints as \\x1b and \\n', async () => {
    const f = fresh();
    patch(f, mem().entryOffset + 1, [0x1b, 0x0a, 0x6d]);
    patch(f, mem().bitmapOffset, new Uint8Array(Math.ceil(mem().pages / 64) * 8));
    const r = await runCli(['verify', '--digest', f]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('"\\x1b\\nm"');
    expect(r.stdout).toContain('  \\x1b\\nm\n');
    expect(r.stdout).not.toContain('\x1b');
    const j = await verifyJson(f, '--digest');
    expect(Object.keys(j.report.digests)).toContain('\x1b\nm');
  });
});
