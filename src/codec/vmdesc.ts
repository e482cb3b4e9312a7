// The VMDESCRIPTION JSON after EOF: how QEMU describes every FULL device section (spec/format.md §6).
import { RecordType } from '../format/constants.js';
import { be32 } from '../format/bytes.js';
import { FormatError } from '../format/errors.js';
import { MAX_BUFFERED_RECORD } from '../io/cursor.js';
import type { PositionalSource } from '../io/source.js';

export interface VmsdDescription {
  vmsd_name?: string;
  name?: string;
  version?: number;
  instance_id?: number;
  fields?: Array<{ name: string; type?: string; size: number; array_len?: number; index?: number; struct?: VmsdDescription }>;
  subsections?: VmsdDescription[];
}

export interface VmDescription {
  configuration?: VmsdDescription;
  page_size?: number;
  devices: VmsdDescription[];
}

/** Where the vmdesc record (0x06, be32 length, JSON) sits and what it says. */
export interface LocatedVmdesc {
  /** Absolute offset of the 0x06 type byte. */
  offset: number;
  json: string;
  desc: VmDescription;
}

/** What the end of a file says about its vmdesc: the record, or why the one found does not parse. */
export interface VmdescAtEnd {
  vmdesc: LocatedVmdesc | null;
  error?: FormatError;
}

/**
 * Finds the vmdesc in the last bytes of a file: a 0x06 byte preceded by the EOF byte 0x00 whose
 * be32 length reaches exactly the end of the file, then a JSON object. The last such record
 * decides: parsed, or `error` when it does not parse.
 */
export function locateVmdesc(tail: Uint8Array, tailOffset: number, fileSize: number): VmdescAtEnd {
  for (let i = tail.lastIndexOf(RecordType.VmDescription, tail.length - 6); i >= 1; i = tail.lastIndexOf(RecordType.VmDescription, i - 1)) {
    if (tail[i - 1] !== RecordType.Eof || tail[i + 5] !== 0x7b) continue;
    const p = tailOffset + i;
    if (be32(tail, i + 1) !== fileSize - (p + 5)) continue;
    const json = new TextDecoder().decode(tail.subarray(i + 5));
    try {
      return { vmdesc: { offset: p, json, desc: parseVmdesc(json, p + 5) } };
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      return { vmdesc: null, error: e };
    }
  }
  return { vmdesc: null };
}

const TAIL_WINDOW = 1 << 20;

/**
 * `locateVmdesc` on a file's last MiB; with `thorough`, up to MAX_BUFFERED_RECORD bytes when the
 * file ends with '}' (else a larger vmdesc is found only when the walk reaches it).
 */
export async function readVmdescAtEnd(source: PositionalSource, streamOffset: number, thorough = false): Promise<VmdescAtEnd> {
  const last = new Uint8Array(1);
  if (source.size - streamOffset < 7 || (await source.readInto(last, source.size - 1)) !== 1) return { vmdesc: null };
  for (const window of thorough && last[0] === 0x7d ? [TAIL_WINDOW, MAX_BUFFERED_RECORD] : [TAIL_WINDOW]) {
    const len = Math.min(window, source.size - streamOffset);
    const tail = new Uint8Array(len);
    await source.readInto(tail, source.size - len);
    const found = locateVmdesc(tail, source.size - len, source.size);
    if (found.vmdesc || found.error || len < window) return found;
  }
  return { vmdesc: null };
}

export function parseVmdesc(json: string, at: number): VmDescription {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new FormatError(at, 'vmdesc JSON', (e as Error).message, 'vmdesc');
  }
  if (typeof v !== 'object' || v === null || !Array.isArray((v as VmDescription).devices)) {
    throw new FormatError(at, 'vmdesc JSON object with a "devices" array', undefined, 'vmdesc');
  }
  return v as VmDescription;
}

/** Payload bytes of a device section as described: fields, then each subsection with its 6+n header. */
export function payloadSize(d: VmsdDescription, at: number, path = d.name ?? d.vmsd_name ?? '?'): number {
  let n = 0;
  for (const f of d.fields ?? []) {
    const count = f.array_len ?? 1;
    if (!Number.isSafeInteger(f.size) || f.size < 0 || !Number.isSafeInteger(count) || count < 0) {
      throw new FormatError(at, `a non-negative size for field ${path}.${f.name} in the vmdesc`, JSON.stringify(f.size), 'vmdesc');
    }
    n += f.size * count;
  }
  for (const s of d.subsections ?? []) {
    const name = s.vmsd_name ?? '';
    n += 2 + name.length + 4 + payloadSize(s, at, `${path}/${name}`);
  }
  if (!Number.isSafeInteger(n)) throw new FormatError(at, `a plausible size for ${path} in the vmdesc`, String(n), 'vmdesc');
  return n;
}
