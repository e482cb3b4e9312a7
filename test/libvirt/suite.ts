// Real libvirt saves, one generation per test file (so they run in parallel): every --image-format
// read by every command, conversions that `virsh restore` brings back running, and (libvirt 12) a
// sparse save converted to raw and restored by libvirt 11 on the host.
// One domain per generation; its saves are made once (beforeAll) and shared by the tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { Libvirtd, libvirtMissing, smallDomainXml, type LibvirtGeneration } from '../support/libvirt.js';
import { readLibvirtHeader } from '../support/libvirt-header.js';

const DOMAIN = 'mram-lv';
const FORMATS = ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd', 'sparse'] as const;
const FORMAT_CODE: Record<string, number> = { raw: 0, gzip: 1, bzip2: 2, xz: 3, lzop: 4, zstd: 5, sparse: 6 };

function header(file: string) {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(1 << 20);
    return readLibvirtHeader(b.subarray(0, fs.readSync(fd, b, 0, b.length, 0)));
  } finally {
    fs.closeSync(fd);
  }
}

async function digests(file: string): Promise<Record<string, string>> {
  const r = await runCli(['verify', '--json', '--digest', file]);
  expect(r.code, `${file}: ${r.stdout}${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout).digests;
}

async function convert(input: string, output: string, ...args: string[]): Promise<void> {
  const r = await runCli(['convert', input, output, ...args]);
  expect(r.code, r.stderr).toBe(0);
}

/** The suite of one libvirt generation. */
export function libvirtSuite(gen: LibvirtGeneration): void {
  const missing = libvirtMissing(gen);
  if (missing && !process.env.CI) {
    describe.skip(`${gen} saves (${missing})`, () => it('skipped', () => undefined));
    return;
  }
  describe(`${gen} saves`, () => {
    let d: Libvirtd;
    let dir: string;
    /** Saves of the running guest (was_running 1): raw, zstd, sparse. */
    const running: Record<string, string> = {};
    /** Saves of the same paused guest in every format, plus a parallel sparse one. */
    const paused: Record<string, string> = {};

    beforeAll(async () => {
      if (missing) throw new Error(`${missing}; CI is set, so the ${gen} suite must not be skipped`);
      d = await Libvirtd.start(gen);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `mram-${gen}-saves-`));
      const xml = path.join(dir, 'domain.xml');
      fs.writeFileSync(xml, smallDomainXml(DOMAIN));
      d.run(['create', xml]);
      for (const f of ['raw', 'zstd', 'sparse']) {
        if (f !== 'raw') d.run(['restore', running[f === 'zstd' ? 'raw' : 'zstd']!]);
        running[f] = path.join(dir, `running.${f}`);
        d.run(['save', DOMAIN, running[f]!, '--image-format', f]);
      }
      d.run(['restore', running['sparse']!, '--paused']);
      for (const f of FORMATS) {
        paused[f] = path.join(dir, `paused.${f}`);
        d.run(['save', DOMAIN, paused[f]!, '--image-format', f]);
        d.run(['restore', paused[f]!, '--paused']);
      }
      paused['parallel'] = path.join(dir, 'paused.parallel');
      d.run(['save', DOMAIN, paused['parallel'], '--image-format', 'sparse', '--parallel-channels', '2']);
    });

    afterAll(async () => {
      await d?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('libvirt wrote each format it was asked for, and marked the saves complete', () => {
      for (const [f, file] of Object.entries(paused)) {
        const h = header(file);
        expect(h.magic).toBe('LibvirtQemudSave');
        expect(h.format).toBe(FORMAT_CODE[f === 'parallel' ? 'sparse' : f]);
        expect(h.wasRunning).toBe(0);
      }
      for (const file of Object.values(running)) expect(header(file).wasRunning).toBe(1);
    });

    it('inspect reads every format; --xml prints exactly the stored XML, which virsh define accepts', async () => {
      for (const [f, file] of Object.entries(paused)) {
        const r = await runCli(['inspect', '--json', file]);
        expect(r.code, `${f}: ${r.stderr}`).toBe(0);
        const j = JSON.parse(r.stdout);
        expect(j.format).toBe(f === 'sparse' || f === 'parallel' ? 'mapped-ram' : 'stream');
        expect(j.libvirt.formatName).toBe(f === 'parallel' ? 'sparse' : f);
        expect(j.blocks.map((b: { id: string }) => b.id)).toContain('pc.ram');
        const x = await runCli(['inspect', '--xml', file]);
        expect(x.code).toBe(0);
        expect(x.stdout).toBe(header(file).xml);
        expect(x.stdout).toContain(`<name>${DOMAIN}</name>`);
      }
      // Ready for virsh define, as piped from the command line.
      const xml = path.join(dir, 'from-save.xml');
      fs.writeFileSync(xml, (await runCli(['inspect', '--xml', paused['zstd']!])).stdout);
      d.run(['define', xml]);
      expect(d.run(['dumpxml', DOMAIN])).toContain(`<name>${DOMAIN}</name>`);
      d.run(['undefine', DOMAIN]);
    });

    it('verify --digest: clean, and the same digests for the same paused guest in every format', async () => {
      const reference = await digests(paused['raw']!);
      expect(Object.keys(reference)).toContain('pc.ram');
      for (const [f, file] of Object.entries(paused)) expect(await digests(file), f).toEqual(reference);
    });

    it('extract of a compressed save gives the same image as of the raw one (its digest)', async () => {
      const reference = await digests(paused['raw']!);
      for (const f of ['zstd', 'xz', 'sparse']) {
        const out = path.join(dir, `pc.ram.${f}`);
        const r = await runCli(['extract', paused[f]!, '--block', 'pc.ram', '-o', out]);
        expect(r.code, r.stderr).toBe(0);
        expect(createHash('sha256').update(fs.readFileSync(out)).digest('hex'), f).toBe(reference['pc.ram']);
        fs.rmSync(out);
      }
    });

    it('convert keeps a libvirt save a libvirt save: same XML, cookie, was_running and data offset; format follows the output', async () => {
      const reference = await digests(paused['raw']!);
      for (const f of ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd', 'parallel']) {
        const input = paused[f]!;
        const to = f === 'parallel' ? 'stream' : 'mapped-ram';
        const out = path.join(dir, `converted.${f}`);
        await convert(input, out);
        const a = header(input);
        const b = header(out);
        expect(b.magic).toBe('LibvirtQemudSave');
        expect(b.format).toBe(to === 'mapped-ram' ? 6 : 0);
        expect({ ...b, format: 0 }).toEqual({ ...a, format: 0 });
        expect(await digests(out), f).toEqual(reference);
        fs.rmSync(out);
      }
    });

    it('virsh restore brings the domain back running from raw→sparse, sparse→raw and zstd→sparse', async () => {
      const cases: [string, string, string[]][] = [
        ['raw', 'sparse', []],
        ['sparse', 'raw', ['--to', 'stream']],
        ['zstd', 'sparse', []],
      ];
      for (const [from, to, args] of cases) {
        const out = path.join(dir, `restore.${from}-to-${to}`);
        await convert(running[from]!, out, ...args);
        expect(header(out).format).toBe(FORMAT_CODE[to]);
        d.run(['restore', out]);
        expect(d.state(DOMAIN), `${from}→${to}`).toBe('running');
        d.run(['destroy', DOMAIN]);
        fs.rmSync(out);
      }
    });

    if (gen === 'libvirt12') {
      it('a libvirt 12 sparse save converted to raw is restored running by libvirt 11 (host)', async () => {
        const older = libvirtMissing('libvirt11');
        if (older && !process.env.CI) return console.warn(`[mram] skipping the libvirt 11 restore: ${older}`);
        if (older) throw new Error(`${older}; CI is set, so the cross-generation restore must not be skipped`);
        const out = path.join(dir, 'sparse-to-raw.save');
        await convert(running['sparse']!, out, '--to', 'stream');
        const host = await Libvirtd.start('libvirt11');
        try {
          host.run(['restore', out]);
          expect(host.state(DOMAIN)).toBe('running');
        } finally {
          await host.stop();
        }
      });
    }
  });
}
