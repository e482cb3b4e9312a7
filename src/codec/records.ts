// The async driver of the record codec: feeds `decode` from a Cursor, one record at a time (the
// core every reader builds on). The bytes' meaning is decode's; moving over them is the driver's.
import { FormatError } from '../format/errors.js';
import { MAX_BUFFERED_RECORD, type Cursor } from '../io/cursor.js';
import { decode } from './decode.js';
import type { MigrationRecord } from './record.js';
import { StreamState, type EncodingRule } from './state.js';
import { locateVmdesc, type LocatedVmdesc } from './vmdesc.js';

export { deviceVersionMismatch, type MigrationRecord, type StopKind } from './record.js';

/** What the driver hands out with the records, and what it knows of the input. */
export interface RecordDataOptions {
  /** Hand out page data views with `ram-page` records (else page data is skipped). */
  pageData?: boolean;
  /** Hand out device payloads with `device-state` records. */
  deviceData?: boolean;
  /** Total input size when known (for the lazy vmdesc search on files). */
  inputSize?: number;
}

/** Options of `readRecords`. */
export interface ReadRecordsOptions extends RecordDataOptions {
  /**
   * The vmdesc, when the caller located it already (e.g. from the end of a file); null = the file
   * has none. Left undefined, the rest of the input is buffered at the first device section to find it.
   */
  vmdesc?: LocatedVmdesc | null;
  /** How the RAM encoding is decided at the first block entry (default: as configured). */
  encoding?: EncodingRule;
  /** The state to decode with, for a caller that reads its facts (default: a new one from the options above). */
  state?: StreamState;
}

/** The records of the stream at the cursor's position. */
export async function* readRecords(c: Cursor, opts: ReadRecordsOptions = {}): AsyncGenerator<MigrationRecord, void, undefined> {
  const state = opts.state ?? new StreamState({ offset: c.offset, vmdesc: opts.vmdesc, encoding: opts.encoding });
  for (let r = await nextRecord(c, state, opts); r !== null; r = await nextRecord(c, state, opts)) yield r;
}

/**
 * The next record from `c` (null after the last), decoded with `state`. The cursor's position is
 * the truth: a caller may consume whole records between calls (the converter's pre-pass does).
 */
export async function nextRecord(c: Cursor, state: StreamState, opts: RecordDataOptions = {}): Promise<MigrationRecord | null> {
  state.offset = c.offset;
  let final = false;
  for (;;) {
    const d = decode(c.peek(c.buffered), state, final);
    if (d.kind === 'end') return null;
    if (d.kind === 'need') {
      final = !(await fill(c, d.bytes));
      continue;
    }
    if (d.kind === 'vmdesc') {
      state.vmdesc = await findVmdescAhead(c, opts.inputSize);
      continue;
    }
    c.bytes(d.length);
    const { record, span } = d;
    if (span) {
      const keep = span.data === 'page' ? opts.pageData : span.data === 'device' ? opts.deviceData : false;
      const data = keep ? await c.readBytes(span.to - c.offset, span.what) : null;
      if (!keep) await c.seek(span.to, span.what);
      if (data && (record?.type === 'ram-page' || record?.type === 'device-state')) record.data = data;
      final = false;
    }
    if (record) return record;
  }
}

/** Buffers n bytes; false when the input ends first (all of it is then buffered). */
async function fill(c: Cursor, n: number): Promise<boolean> {
  return (await c.fillUpTo(n)) >= n;
}

/** Buffers what is left of the input (device state and vmdesc come last) to find the vmdesc. */
async function findVmdescAhead(c: Cursor, inputSize?: number): Promise<LocatedVmdesc | null> {
  const from = c.offset;
  const rest = await c.peekRest(MAX_BUFFERED_RECORD);
  if (!rest) return null;
  return locateVmdesc(rest, from, inputSize ?? from + rest.length).vmdesc;
}

/**
 * Every record of a stream held in memory (no I/O): what the codec tests feed. Page and device
 * data are views into `bytes`. Decoding errors throw as they would from a file.
 */
export function decodeAll(bytes: Uint8Array, state = new StreamState()): MigrationRecord[] {
  const out: MigrationRecord[] = [];
  const base = state.offset;
  for (;;) {
    const at = state.offset - base;
    const d = decode(bytes.subarray(Math.min(at, bytes.length)), state, true);
    if (d.kind === 'end') return out;
    if (d.kind === 'need') throw new RangeError(`decode asked for ${d.bytes} bytes of a final buffer`);
    if (d.kind === 'vmdesc') {
      state.vmdesc = locateVmdesc(bytes.subarray(at), state.offset, base + bytes.length).vmdesc;
      continue;
    }
    const from = at + d.length;
    if (d.span) {
      const { to, what, data } = d.span;
      // The errors of a FileCursor reading the span (data) or seeking past it.
      if (to - base > bytes.length && data) throw new FormatError(base + bytes.length, `${what} (${to - base - from} bytes at ${base + from})`, 'end of file', 'truncated');
      if (to - base > bytes.length) throw new FormatError(base + from, `${what} inside the file (offset ${to})`, `file size ${base + bytes.length}`, 'truncated');
      const r = d.record;
      if (data && (r?.type === 'ram-page' || r?.type === 'device-state')) r.data = bytes.subarray(from, to - base);
    }
    if (d.record) out.push(d.record);
  }
}
