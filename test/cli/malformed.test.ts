// Hand-made malformed inputs (test/fixtures/malformed/cases.ts) through every command of the real
// CLI: one clear line or a finding, never a crash, a hang, or a success QEMU's loader would not share.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeMalformed } from '../fixtures/malformed/cases.js';
import { buildCli, CLI } from '../convert/support.js';
import { tempDir } from '../verify/support.js';

const dir = tempDir('mram-malformed-');
let files: Record<string, string> = {};
beforeAll(async () => {
  buildCli();
  files = await writeMalformed(dir);
}, 120_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a child process (asynchronous: a long run must not block the test worker). */
function mram(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, timeout: 120_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

/** No crash: no "internal error", no stack frame, at most one line on stderr. */
function clean(r: Run, what: string): void {
  expect(r.stderr, what).not.toMatch(/internal error|\n\s+at |Unhandled/);
  expect(r.stderr.trim().split('\n').length, what).toBeLessThanOrEqual(1);
}

const codes = (r: Run) => (JSON.parse(r.stdout) as { errors: Array<{ code: string }>; warnings: Array<{ code: string }> });
const errorCodes = (r: Run) => codes(r).errors.map((f) => f.code);
const warningCodes = (r: Run) => codes(r).warnings.map((f) => f.code);
const out = (name: string) => path.join(dir, name);

describe('inputs QEMU refuses or reads differently: convert and extract refuse, verify reports', () => {
  it('zero-fill-55: a ZERO page with fill byte 0x55 (QEMU: "Found a zero page with value 85")', async () => {
    const f = files['zero-fill-55']!;
    const v = await mram('verify', '--json', f);
    expect(v.status).toBe(2);
    expect(errorCodes(v)).toContain('E_FRAMING');
    for (const r of [await mram('convert', f, out('zf.mram')), await mram('extract', f, '--block', 'mem', '-o', out('zf.ram'))]) {
      clean(r, 'zero-fill');
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/zero page record with fill byte 0.*found 85/);
    }
    expect(fs.existsSync(out('zf.mram')) || fs.existsSync(out('zf.ram'))).toBe(false);
  });

  it('part-as-eof: a RAM PART type byte turned into EOF is an incomplete migration', async () => {
    const f = files['part-as-eof']!;
    const v = await mram('verify', '--json', f);
    expect(v.status).toBe(2);
    expect(errorCodes(v)).toContain('E_NO_EOF');
    for (const r of [await mram('convert', f, out('pe.mram')), await mram('extract', f, '--all', out('pe-all')), await mram('inspect', f)]) {
      clean(r, 'part-as-eof');
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/RAM END section before the EOF record/);
    }
    expect(fs.existsSync(out('pe.mram'))).toBe(false);
  });

  for (const [name, block] of [['page-size-8192', 'mem'], ['page-size-512-bios', 'pc.bios'], ['page-size-8192-1-page', '/rom@etc/acpi/rsdp']] as const) {
    it(`${name}: a mapped-ram header page size other than the target page size (E_PAGE_SIZE everywhere)`, async () => {
      const f = files[name]!;
      const v = await mram('verify', '--json', '--digest', f);
      expect(v.status).toBe(2);
      expect(errorCodes(v)).toContain('E_PAGE_SIZE');
      // QEMU reads another number of bitmap bits for this block: no digest claims its content.
      const digests = (JSON.parse(v.stdout) as { digests: Record<string, string> }).digests;
      expect(Object.keys(digests)).not.toContain(block);
      for (const r of [await mram('convert', f, out(`${name}.stream`)), await mram('extract', f, '--block', block, '-o', out(`${name}.ram`)), await mram('inspect', f)]) {
        clean(r, name);
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/E_PAGE_SIZE/);
      }
    });
  }
});

describe('malformed vmdesc: a finding, never a crash', () => {
  for (const name of ['vmdesc-fields-null', 'vmdesc-fields-5', 'vmdesc-subsections-null', 'vmdesc-deep', 'vmdesc-page-size-object']) {
    it(name, async () => {
      const f = files[name]!;
      const v = await mram('verify', '--json', f);
      clean(v, name);
      expect(v.status).toBe(2);
      expect(errorCodes(v)).toContain('E_VMDESC_JSON');
      const i = await mram('inspect', f);
      clean(i, name);
      expect(i.stdout + i.stderr).not.toContain('[object Object]');
    });
  }
});

describe('no hang, no allocation sized by a declared length', () => {
  it('zero-tail: (header + configuration; cat /dev/zero) | convert - ends at once with one line', async () => {
    const f = files['zero-tail']!;
    const prologue = fs.statSync(f).size - (64 << 10);
    const r = spawnSync('bash', ['-c', `(head -c ${prologue} ${f}; cat /dev/zero) | timeout 60 ${process.execPath} ${CLI} convert - z.mram`], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr.toString()).toMatch(/^mram convert: at offset \d+ .*a RAM section before the EOF record.*\n$/);
    expect(fs.existsSync(out('z.mram'))).toBe(false);
    const fromFile = await mram('convert', f, out('z2.mram'));
    expect(fromFile.status).toBe(1);
    expect((await mram('extract', f, '--all', out('z-all'))).status).toBe(1);
  });

  it('huge-block: a 96-byte stream declaring 1 TiB: verify --digest declines (W_UNCHECKED), extract writes a sparse image', async () => {
    const f = files['huge-block']!;
    const v = await mram('verify', '--json', '--digest', f);
    expect(v.status).toBe(3);
    expect(warningCodes(v)).toContain('W_UNCHECKED');
    const img = out('huge.ram');
    const x = await mram('extract', f, '--block', 'pc.ram', '-o', img);
    expect(x.status).toBe(0);
    const st = fs.statSync(img);
    expect(st.size).toBe(2 ** 40);
    expect(st.blocks).toBe(0);
    fs.rmSync(img);
  });

  it('block-2p53: a stream block of 2^53 - 4096 bytes gives one line from convert and extract', async () => {
    const f = files['block-2p53']!;
    const c = await mram('convert', f, out('b53.mram'));
    clean(c, 'convert');
    expect(c.status).toBe(1);
    expect(c.stderr).toMatch(/RAM size whose page bitmaps/);
    const x = await mram('extract', f, '--block', 'pc.ram', '-o', out('b53.ram'));
    clean(x, 'extract');
    expect(x.status).toBe(1);
    expect(x.stderr).toMatch(/b53\.ram: EFBIG/);
    expect(x.stderr).not.toContain('mram-tmp');
    expect(fs.readdirSync(dir).filter((n) => n.includes('mram-tmp'))).toEqual([]);
  });

  it('convert --offset 0x1fffffffffffff: a usage error, not a RangeError', async () => {
    const r = await mram('convert', files['long-name']!, out('off.mram'), '--offset', '0x1fffffffffffff');
    clean(r, 'offset');
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/beyond byte 2\^53/);
  });
});

describe('messages', () => {
  it('many-blocks: inspect tabulates 130,000 blocks; an unknown block lists a few names and a count', async () => {
    const f = files['many-blocks']!;
    const i = await mram('inspect', f);
    clean(i, 'inspect');
    expect(i.status).toBe(0);
    expect(i.stdout).toMatch(/^ {2}b129999 /m);
    const x = await mram('extract', f, '--block', 'nosuch', '-o', out('nosuch.ram'));
    expect(x.status).toBe(64);
    expect(x.stderr).toMatch(/no RAM block "nosuch" \(blocks: "b0", "b1", "b2", "b3", "b4" and 129995 more\)/);
  });

  it('long-name: extract --all cuts a 300-character name as promised; the temporary name fits too', async () => {
    const all = out('long-all');
    const r = await mram('extract', files['long-name']!, '--all', all);
    expect(r.stderr).not.toMatch(/internal error|ENAMETOOLONG/);
    expect(r.status).toBe(0);
    const names = fs.readdirSync(all).sort();
    expect(names).toHaveLength(2);
    expect(names).toContain('a.ram');
    const long = names.find((n) => n !== 'a.ram')!;
    expect(long.startsWith('%2F%2F')).toBe(true);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(244);
  });
});
