import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationFile } from '../../src/index.js';
import { getFixture, REPO_ROOT, type Fixture } from '../support/fixtures.js';
import { runBin, runCli } from '../support/cli.js';
import { readLibvirtHeader } from '../support/libvirt-header.js';

const schema = JSON.parse(readFileSync(path.join(REPO_ROOT, 'spec/inspect.schema.json'), 'utf8'));
const validate = new Ajv({ allErrors: true }).compile(schema);
const tmp = mkdtempSync(path.join(tmpdir(), 'mram-inspect-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** One error line naming an offset, no stack trace. */
function expectOneLineError(stderr: string, offset: number): void {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(`at offset ${offset} `);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('mram inspect', () => {
  let mr: Fixture;
  let stream: Fixture;
  let libvirt: Fixture;
  beforeAll(async () => {
    [mr, stream, libvirt] = await Promise.all([getFixture('mr-32m'), getFixture('stream-32m'), getFixture('libvirt-mr-32m')]);
  });

  it('--json validates against spec/inspect.schema.json for every encoding', async () => {
    for (const fx of [mr, stream, libvirt]) {
      const r = await runCli(['inspect', '--json', fx.file]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
      expect(doc.format).toBe(fx.meta.mappedRam ? 'mapped-ram' : 'stream');
      expect(doc.machineType).toMatch(/^pc-q35-/);
      const mem = doc.blocks.find((b: { id: string }) => b.id === 'mem');
      expect(mem.presentPages).toBe(fx.meta.ramNonZeroPages);
      if (!fx.meta.mappedRam) expect(mem.bitmapOffset).toBeNull();
    }
  });

  it('prints a one-screen summary with the block table', async () => {
    const r = await runCli(['inspect', mr.file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^format\s+mapped-ram/m);
    expect(r.stdout).toMatch(/^\s+mem\s+32\.0 MiB\s+8192\s+\d+/m);
    expect(r.stdout.split('\n').length).toBeLessThan(30);
  });

  it('--devices lists devices and --xml prints the libvirt domain XML', async () => {
    const d = await runCli(['inspect', '--devices', mr.file]);
    expect(d.stdout).toMatch(/^\s+DEVICE\s+INSTANCE/m);
    expect(d.stdout).toMatch(/^\s+cpu\s/m);
    const s = await runCli(['inspect', libvirt.file]);
    expect(s.stdout).toMatch(/^libvirt\s+LibvirtQemudSave v2, format 6 \(sparse\)/m);
    // --xml: the XML alone, as stored (ready for virsh define); no header: exit 1, nothing on stdout.
    const x = await runCli(['inspect', '--xml', libvirt.file]);
    expect(x.code).toBe(0);
    expect(x.stdout).toBe(readLibvirtHeader(readFileSync(libvirt.file).subarray(0, 1 << 20)).xml);
    const none = await runCli(['inspect', '--xml', mr.file]);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/no libvirt save header/);
  });

  it('--offset reads a stream behind a prefix', async () => {
    const fx = await getFixture('mr-off-32m');
    const r = await runCli(['inspect', '--json', '--offset', String(fx.meta.offset), fx.file]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).streamOffset).toBe(fx.meta.offset);
  });

  it('a truncated file gives one error line naming the offset, exit 1, no stack trace', async () => {
    const f = await MigrationFile.open(mr.file);
    const cuts = f.sections.filter((s) => s.type !== 'header').map((s) => s.offset + Math.min(3, s.length - 1));
    await f.close();
    for (const cut of cuts) {
      const p = path.join(tmp, 'cut.mig');
      copyFileSync(mr.file, p);
      truncateSync(p, cut);
      const r = await runCli(['inspect', p]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/at offset \d+ .*expected|incomplete: parsing stopped at offset \d+: cannot size/);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('a garbled magic and a garbled footer are named with their offsets (real binary)', async () => {
    if (!existsSync(path.join(REPO_ROOT, 'dist/cli/mram.cjs'))) throw new Error('run npm run build first');
    const p = path.join(tmp, 'garbled.mig');
    const bytes = readFileSync(mr.file);
    bytes[1] = 0x00;
    writeFileSync(p, bytes);
    const r = runBin(['inspect', p]);
    expect(r.code).toBe(1);
    expectOneLineError(r.stderr, 0);

    const f = await MigrationFile.open(mr.file);
    const footerAt = f.devices[3]!.offset + f.devices[3]!.length - 5;
    await f.close();
    const g = readFileSync(mr.file);
    g[footerAt] = 0x7f;
    writeFileSync(p, g);
    const r2 = runBin(['inspect', p]);
    expect(r2.code).toBe(1);
    expectOneLineError(r2.stderr, footerAt);
    expect(r2.stderr).toContain('section footer');
  });

  it('escapes control characters that come from the file', async () => {
    // Rename the first device (same length) to contain ESC and a newline.
    const f = await MigrationFile.open(mr.file);
    const dev = f.devices[0]!;
    await f.close();
    const bytes = readFileSync(mr.file);
    const nameAt = dev.offset + 1 + 4 + 1;
    const len = bytes[nameAt - 1]!;
    expect(len).toBeGreaterThanOrEqual(3);
    bytes[nameAt] = 0x1b;
    bytes[nameAt + 1] = 0x0a;
    const p = path.join(tmp, 'ctl.mig');
    writeFileSync(p, bytes);
    const r = await runCli(['inspect', p]);
    // The vmdesc no longer matches the renamed device: one escaped error line.
    expect(r.stderr).toContain('\\u001b\\n');
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('rejects usage errors with exit 64', async () => {
    expect((await runCli(['inspect'])).code).toBe(64);
    expect((await runCli(['inspect', '--offset', 'zz', mr.file])).code).toBe(64);
    expect((await runCli(['bogus'])).code).toBe(64);
  });
});
