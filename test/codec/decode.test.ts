// decode on real QEMU saves, bytes in and records out: the record counts and sizes QEMU itself
// reported for each save (query-migrate, in the fixture's .json), and the same records whatever
// the bytes are fed in pieces of.
import { describe, expect, it } from 'vitest';
import { decode } from '../../src/codec/decode.js';
import { decodeAll, type MigrationRecord } from '../../src/codec/records.js';
import { StreamState } from '../../src/codec/state.js';
import { locateVmdesc } from '../../src/codec/vmdesc.js';
import { saveBytes, saveMeta, SAVES, streamStart } from './support.js';

const count = (records: MigrationRecord[], type: MigrationRecord['type']) => records.filter((r) => r.type === type).length;

describe.each(SAVES)('%s', (name) => {
  const meta = saveMeta(name);
  const bytes = saveBytes(name);
  const start = streamStart(bytes, meta);
  const xis = name.includes('-xis-');

  it('decodes to the records QEMU reported sending', () => {
    const state = new StreamState({ offset: start });
    const records = decodeAll(bytes.subarray(start), state);
    expect(records[0]).toEqual({ type: 'header', offset: start, version: 3 });
    expect(records[1]!.type).toBe('configuration');
    expect(state.mappedRam).toBe(meta.mappedRam);
    expect(state.pageSize).toBe(meta.pageSize);
    expect(bytes.length).toBe(meta.migBytes);
    // QEMU's RAM total leaves out the block x-ignore-shared shares (the guest's memory backend).
    const blocks = records.filter((r): r is Extract<MigrationRecord, { type: 'ram-block' }> => r.type === 'ram-block').map((r) => r.entry);
    const main = blocks.find((b) => b.idstr === meta.ramBlock)!;
    expect(main.usedLength).toBe(meta.memMiB << 20);
    expect(blocks.reduce((n, b) => n + b.usedLength, 0) - (xis ? main.usedLength : 0)).toBe(meta.stats.ram.total);
    expect([...state.blocks.keys()]).toEqual(blocks.map((b) => b.idstr));
    if (meta.mappedRam) {
      // Pages live in the page areas: no page record, every block a mapped-ram header.
      expect(count(records, 'ram-page') + count(records, 'ram-zero')).toBe(0);
      expect(blocks.every((b) => b.mappedRam !== null && b.mappedRam.pageSize === meta.pageSize)).toBe(true);
    } else {
      expect(count(records, 'ram-page')).toBe(meta.stats.ram.normal);
      expect(count(records, 'ram-zero')).toBe(meta.stats.ram.duplicate);
    }
    // The stream ends with EOF and the vmdesc describing every device section, nothing after.
    const vmdesc = records.at(-1) as Extract<MigrationRecord, { type: 'vmdesc' }>;
    expect(records.at(-2)!.type).toBe('eof');
    expect(vmdesc.type).toBe('vmdesc');
    expect(vmdesc.offset + vmdesc.length).toBe(bytes.length);
    expect(count(records, 'device-state')).toBe(vmdesc.vmdesc.desc.devices.length);
    expect(state.deviceIndex).toBe(vmdesc.vmdesc.desc.devices.length);
    expect(state.pastEof).toBe(true);
  });

  it('hands out the same records when the bytes come in pieces (need more, state untouched)', () => {
    // Compared without the data views (the same bytes either way: views at the same offsets).
    const bare = (r: MigrationRecord) => ('data' in r ? { ...r, data: r.data?.byteOffset ?? null } : r);
    const whole = decodeAll(bytes.subarray(start), new StreamState({ offset: start })).map(bare);
    const state = new StreamState({ offset: start });
    const pieces: MigrationRecord[] = [];
    let avail = start;
    let needs = 0;
    for (;;) {
      const at = state.offset;
      const d = decode(bytes.subarray(at, Math.min(avail, bytes.length)), state, avail >= bytes.length);
      if (d.kind === 'end') break;
      if (d.kind === 'need') {
        expect(d.bytes).toBeGreaterThan(avail - at);
        expect(state.offset).toBe(at);
        needs++;
        avail = Math.max(avail, at) + 1 + (needs % 7) * 1000;
        continue;
      }
      if (d.kind === 'vmdesc') {
        // The driver's part: the vmdesc is found at the end of the input.
        state.vmdesc = locateVmdesc(bytes.subarray(at), at, bytes.length).vmdesc;
        continue;
      }
      if (d.span?.data && d.record) (d.record as { data: Uint8Array | null }).data = bytes.subarray(at + d.length, d.span.to);
      if (d.record) pieces.push(bare(d.record));
    }
    expect(needs).toBeGreaterThan(10);
    expect(pieces).toEqual(whole);
  });
});
