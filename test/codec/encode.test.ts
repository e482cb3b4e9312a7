// encode is decode's inverse on real QEMU saves: every record re-encodes to the very bytes QEMU
// wrote at its offset, and a plain stream re-encodes whole, byte for byte.
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../src/codec/byte-writer.js';
import { encode } from '../../src/codec/encode.js';
import { decodeAll, type MigrationRecord } from '../../src/codec/records.js';
import { StreamState } from '../../src/codec/state.js';
import { saveBytes, saveMeta, SAVES, streamStart } from './support.js';

describe.each(SAVES)('%s', (name) => {
  const meta = saveMeta(name);
  const bytes = saveBytes(name);
  const start = streamStart(bytes, meta);

  it('every record encodes to the bytes at its offset', () => {
    const state = new StreamState({ offset: start });
    const records = decodeAll(bytes.subarray(start), state);
    const w = new ByteWriter();
    let checked = 0;
    for (const r of records) {
      w.length = 0;
      const out = encode(r, { pageSize: state.pageSize, into: w });
      expect(Buffer.from(bytes.subarray(r.offset, r.offset + out.length)).equals(Buffer.from(out)), `${r.type} at ${r.offset}`).toBe(true);
      checked += out.length;
    }
    expect(checked).toBeGreaterThan(0);
  });
});

describe.each(SAVES.filter((name) => !saveMeta(name).mappedRam))('%s, a plain stream', (name) => {
  const bytes = saveBytes(name);
  const start = streamStart(bytes, saveMeta(name));

  it('re-encodes whole, byte for byte', () => {
    const state = new StreamState({ offset: start });
    const records = decodeAll(bytes.subarray(start), state);
    const w = new ByteWriter();
    for (const r of records) encode(r, { pageSize: state.pageSize, into: w });
    expect(w.length).toBe(bytes.length - start);
    expect(Buffer.from(w.view()).equals(bytes.subarray(start))).toBe(true);
  });
});

describe('encode without data', () => {
  const block = { idstr: 'mem', usedLength: 1 << 20, entryOffset: 0, blockPageSize: null, mrAddr: null, mappedRam: null };
  const page = (continued: boolean): MigrationRecord => ({ type: 'ram-page', offset: 0, block, pageIndex: 3, dataOffset: 0, data: null, continued });

  it('a page record without data is its word (and block name): the caller appends the page', () => {
    // 3 * 4096 = 0x3000, PAGE 0x08; CONTINUE 0x20 drops the name.
    expect(Buffer.from(encode(page(false))).toString('hex')).toBe('0000000000003008' + '036d656d');
    expect(Buffer.from(encode(page(true))).toString('hex')).toBe('0000000000003028');
    expect(Buffer.from(encode(page(true), { pageSize: 65536 })).toString('hex')).toBe('0000000000030028');
  });

  it('trailing bytes and a stop are not records of a stream', () => {
    expect(() => encode({ type: 'trailing', offset: 0, length: 1, more: false })).toThrow(RangeError);
    expect(() => encode({ type: 'stop', offset: 0, kind: 'iterative', reason: 'x' })).toThrow(RangeError);
  });
});
