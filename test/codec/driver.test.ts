// The async driver over decode: the records of a pipe in odd-sized chunks are decode's records,
// and an error of the input itself is never mistaken for the input's end.
import { expect, it } from 'vitest';
import { decodeAll, readRecords, type MigrationRecord } from '../../src/codec/records.js';
import { FormatError } from '../../src/format/errors.js';
import { FileCursor, StreamCursor } from '../../src/io/cursor.js';
import type { PositionalSource } from '../../src/io/source.js';
import { saveBytes } from './support.js';

async function collect(records: AsyncIterable<MigrationRecord>): Promise<MigrationRecord[]> {
  const out: MigrationRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

const bare = (r: MigrationRecord) => ('data' in r ? { ...r, data: null } : r);

it('a pipe in chunks of 1 to 9973 bytes: the records decode hands out', async () => {
  const bytes = saveBytes('stream-live-32m');
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let at = 0, n = 1; at < bytes.length; at += n, n = (n * 7 + 3) % 9973 || 1) yield bytes.subarray(at, at + n);
  }
  const piped = await collect(readRecords(new StreamCursor(chunks()), { pageData: true, deviceData: true }));
  const whole = decodeAll(bytes);
  expect(piped.map(bare)).toEqual(whole.map(bare));
});

it('page data views, while valid, hold the bytes at the data offset', async () => {
  const bytes = saveBytes('stream-32m');
  const source: PositionalSource = {
    path: 'memory',
    size: bytes.length,
    allocated: bytes.length,
    async readInto(into, position) {
      const n = Math.max(0, Math.min(into.length, bytes.length - position));
      into.set(bytes.subarray(position, position + n));
      return n;
    },
    async close() {},
  };
  let pages = 0;
  for await (const r of readRecords(new FileCursor(source, 0), { pageData: true })) {
    if (r.type !== 'ram-page') continue;
    expect(Buffer.from(r.data!).equals(bytes.subarray(r.dataOffset, r.dataOffset + 4096))).toBe(true);
    pages++;
  }
  expect(pages).toBe(326);
});

it("an input's own error (a qcow2 data cluster past its file) is not the input's end", async () => {
  const bytes = saveBytes('stream-32m');
  const failing: PositionalSource = {
    path: 'memory',
    size: bytes.length,
    allocated: bytes.length,
    async readInto(into, position) {
      if (position + into.length > 4096) throw new FormatError(position, 'a data cluster inside the file', 'offset beyond', 'truncated');
      into.set(bytes.subarray(position, position + into.length));
      return into.length;
    },
    async close() {},
  };
  await expect(collect(readRecords(new FileCursor(failing, 0)))).rejects.toThrow(/a data cluster inside the file/);
});
