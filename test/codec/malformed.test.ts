// The catalogue of malformed inputs, kept as data (yauzl style): test/fixtures/codec-malformed/NAME.json
// holds a recipe (a committed QEMU save with bytes patched or cut, or synthetic hex) and the one
// error expected, with its offset and kind. Each is asserted through decode, and through the
// Cursor driver reading the same bytes from memory.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeAll, readRecords } from '../../src/codec/records.js';
import { FormatError, type FormatErrorKind } from '../../src/format/errors.js';
import { FileCursor } from '../../src/io/cursor.js';
import type { PositionalSource } from '../../src/io/source.js';
import { FIXTURES, saveBytes } from './support.js';

interface Case {
  what: string;
  /** A committed save to start from, or null with `hex`. */
  base?: string;
  hex?: string;
  patch?: Array<{ at: number; hex: string }>;
  /** Keep only the first `cut` bytes (after patching). */
  cut?: number;
  error: { offset: number; message: string; kind: FormatErrorKind };
}

const DIR = path.join(FIXTURES, 'codec-malformed');
const CASES = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

function build(c: Case): Buffer {
  let b = c.hex !== undefined ? Buffer.from(c.hex, 'hex') : Buffer.from(saveBytes(c.base!));
  for (const p of c.patch ?? []) Buffer.from(p.hex, 'hex').copy(b, p.at);
  if (c.cut !== undefined) b = b.subarray(0, c.cut);
  return b;
}

/** The bytes as a PositionalSource, in memory. */
function memorySource(b: Uint8Array): PositionalSource {
  return {
    path: 'memory',
    size: b.length,
    allocated: b.length,
    async readInto(into, position) {
      const n = Math.max(0, Math.min(into.length, b.length - position));
      into.set(b.subarray(position, position + n));
      return n;
    },
    async close() {},
  };
}

function caught(f: () => void): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return null;
}

const expectError = (e: unknown, c: Case) => {
  expect(e).toBeInstanceOf(FormatError);
  const f = e as FormatError;
  expect({ offset: f.offset, message: f.message, kind: f.kind }).toEqual(c.error);
};

it('the catalogue holds the cases', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(30);
});

describe.each(CASES)('%s', (file) => {
  const c = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as Case;

  it(`decode: ${c.what}`, () => {
    const b = build(c);
    expect(c.error.message).toMatch(new RegExp(`^at offset ${c.error.offset} `));
    expectError(caught(() => decodeAll(b)), c);
  });

  it('the Cursor driver: the same error', async () => {
    const b = build(c);
    const read = async () => {
      for await (const r of readRecords(new FileCursor(memorySource(b), 0), { pageData: true, deviceData: true, inputSize: b.length })) void r;
    };
    expectError(await read().then(() => null, (e: unknown) => e), c);
  });
});
