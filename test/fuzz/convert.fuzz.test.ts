// Differential fuzzing of the converter's in-place path: real QEMU plain streams with their page
// records mutated; staging records with the wasm kernel must give exactly what the TypeScript
// walker's per-record path gives — the same output bytes, or the same error at the same offset.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { readRecords } from '../../src/codec/records.js';
import { streamToMappedRam } from '../../src/convert/to-mapped-ram.js';
import { FormatError, UsageError } from '../../src/format/errors.js';
import { FileCursor } from '../../src/io/cursor.js';
import { FileSource } from '../../src/io/file-source.js';
import { PrefetchFileCursor } from '../../src/io/prefetch-cursor.js';
import { getFixture } from '../support/fixtures.js';
import { tempDir } from '../verify/support.js';
import { mulberry32 } from '../support/random.js';
// The debug kernel (assertions on, through @assemblyscript/loader): a kernel bounds violation names its assembly/*.ts line.
vi.mock('../../src/kernel/wasm.js', (original) => import('../support/debug-kernel.js').then((m) => m.withDebugKernel(original)));

const dir = tempDir('mram-convert-fuzz-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const CASES = 60;

/** Offsets of the page and zero records of a stream (their 8-byte address|flags words). */
async function pageRecords(file: string): Promise<Array<{ at: number; zero: boolean }>> {
  const source = await FileSource.open(file);
  const out: Array<{ at: number; zero: boolean }> = [];
  try {
    for await (const r of readRecords(new FileCursor(source, 0), {})) {
      if (r.type === 'ram-page' || r.type === 'ram-zero') out.push({ at: r.offset, zero: r.type === 'ram-zero' });
    }
  } finally {
    await source.close();
  }
  return out;
}

type Outcome = { ok: true; bytes: Buffer } | { ok: false; error: string };

async function convert(file: string, out: string, inPlace: boolean): Promise<Outcome> {
  const source = await FileSource.open(file);
  try {
    await streamToMappedRam(new PrefetchFileCursor(source, 0), out, { inputSize: source.size, force: true, inPlace });
    return { ok: true, bytes: fs.readFileSync(out) };
  } catch (e) {
    // Only clean errors are acceptable: anything else is a bug whatever the path.
    if (!(e instanceof FormatError || e instanceof UsageError)) throw e;
    return { ok: false, error: `${e.constructor.name}: ${e.message}` };
  } finally {
    await source.close();
    fs.rmSync(out, { force: true });
  }
}

describe('fuzz: in-place page staging equals the per-record path on mutated streams', () => {
  for (const name of ['stream-32m', 'stream-live-32m']) {
    it(`${name}: ${CASES} mutations of page records`, async () => {
      const fx = await getFixture(name);
      const pristine = fs.readFileSync(fx.file);
      const recs = await pageRecords(fx.file);
      expect(recs.length).toBeGreaterThan(1000);
      const rnd = mulberry32(name.length * 7919);
      const work = path.join(dir, `${name}.mig`);
      let failures = 0;
      for (let k = 0; k < CASES; k++) {
        const bytes = Buffer.from(pristine);
        const mutations: string[] = [];
        for (let m = 0; m < 1 + Math.floor(rnd() * 3); m++) {
          const r = recs[Math.floor(rnd() * recs.length)]!;
          const kind = Math.floor(rnd() * 5);
          if (kind === 0) bytes[r.at + 7] = Math.floor(rnd() * 256); // flags (and low address bits)
          else if (kind === 1) bytes[r.at + Math.floor(rnd() * 7)] = Math.floor(rnd() * 256); // address
          else if (kind === 2 && r.zero && bytes[r.at + 7]! & 0x20) bytes[r.at + 8] = 1 + Math.floor(rnd() * 255); // fill byte
          else if (kind === 3) bytes[r.at + 7] = (bytes[r.at + 7]! & ~0x0a) | (r.zero ? 0x08 : 0x02); // PAGE <-> ZERO
          else bytes[r.at + 6] ^= 1 << Math.floor(rnd() * 8); // next page / another block's page
          mutations.push(`${kind}@${r.at}`);
        }
        const cut = rnd() < 0.1 ? recs[Math.floor(rnd() * recs.length)]!.at + Math.floor(rnd() * 4200) : bytes.length;
        fs.writeFileSync(work, bytes.subarray(0, cut));
        const ctx = `${name} case ${k}: ${mutations.join(' ')}${cut < bytes.length ? ` cut@${cut}` : ''}`;
        const fast = await convert(work, path.join(dir, 'fast.mram'), true);
        const slow = await convert(work, path.join(dir, 'slow.mram'), false);
        if (!fast.ok || !slow.ok) {
          expect(fast.ok ? 'converted' : fast.error, ctx).toBe(slow.ok ? 'converted' : slow.error);
          failures++;
        } else {
          expect(fast.bytes.equals(slow.bytes), ctx).toBe(true);
        }
      }
      // The mutations reach both outcomes: some streams still convert, some are refused.
      expect(failures).toBeGreaterThan(0);
      expect(failures).toBeLessThan(CASES);
    }, 300_000);
  }
});
