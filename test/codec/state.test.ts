// The facts consumers read from the StreamState, on real QEMU saves: the encoding as configured or
// as found (verify's view of a configuration that contradicts its blocks), and the block CONTINUE
// pages belong to.
import { describe, expect, it } from 'vitest';
import { decodeAll, type MigrationRecord } from '../../src/codec/records.js';
import { StreamState } from '../../src/codec/state.js';
import { FormatError } from '../../src/format/errors.js';
import { saveBytes } from './support.js';

/** mr-32m with its configuration's "mapped-ram" capability renamed (same length): the blocks still carry headers. */
function unconfigured(): Buffer {
  const b = Buffer.from(saveBytes('mr-32m'));
  const at = b.subarray(0, 200).indexOf('mapped-ram');
  expect(at).toBeGreaterThan(8);
  b.write('mapped-raX', at, 'latin1');
  return b;
}

describe('the RAM encoding', () => {
  it('as found: the bytes after the first block entry win, and the contradiction is noted once', () => {
    const state = new StreamState({ encoding: 'as-found' });
    const records = decodeAll(unconfigured(), state);
    expect(state.config!.capabilities).toContain('mapped-raX');
    expect(state.mappedRam).toBe(true);
    // The first entry ("mem", 1 + 3 + 8 bytes at 96) is followed by its header at 108 (see decode.test.ts).
    expect(state.encodingMismatch).toEqual({ idstr: 'mem', headerOffset: 108, configured: false });
    const blocks = records.filter((r): r is Extract<MigrationRecord, { type: 'ram-block' }> => r.type === 'ram-block');
    expect(blocks.length).toBe(6);
    expect(blocks.every((r) => r.entry.mappedRam !== null)).toBe(true);
    expect(records.at(-1)!.type).toBe('vmdesc');
  });

  it('as configured (what QEMU does): the header is read as the next block entry, and refused', () => {
    const state = new StreamState();
    expect(() => decodeAll(unconfigured(), state)).toThrow(FormatError);
    expect(state.mappedRam).toBe(false);
    expect(state.encodingMismatch).toBeNull();
  });

  it('an honest save: no contradiction either way', () => {
    for (const name of ['mr-32m', 'stream-32m']) {
      const state = new StreamState({ encoding: 'as-found' });
      decodeAll(saveBytes(name), state);
      expect(state.encodingMismatch).toBeNull();
      expect(state.mappedRam).toBe(name.startsWith('mr'));
    }
  });
});

it('CONTINUE pages belong to the block last named; the state keeps it across sections', () => {
  const state = new StreamState();
  const records = decodeAll(saveBytes('stream-32m'), state);
  let named: string | null = null;
  let continued = 0;
  for (const r of records) {
    if (r.type !== 'ram-page' && r.type !== 'ram-zero') continue;
    if (r.continued) {
      expect(r.block.idstr).toBe(named);
      continued++;
    } else named = r.block.idstr;
  }
  expect(continued).toBeGreaterThan(8000);
  expect(state.current!.idstr).toBe(named);
  expect(state.ramOpen).toBe(false);
});
