// The VMDESCRIPTION JSON after EOF: how QEMU describes every FULL device section (spec/format.md §6).
import { RecordType } from '../format/constants.js';
import { be32 } from '../format/bytes.js';
import { FormatError } from '../format/errors.js';
import { MAX_BUFFERED_RECORD } from '../io/cursor.js';
import type { PositionalSource } from '../io/source.js';

/** One VMStateDescription as the vmdesc JSON gives it: fields, subsections, sizes. */
export interface VmsdDescription {
  vmsd_name?: string;
  name?: string;
  version?: number;
  instance_id?: number;
  fields?: Array<{ name: string; type?: string; size: number; array_len?: number; index?: number; struct?: VmsdDescription }>;
  subsections?: VmsdDescription[];
}

/** The vmdesc JSON: the device descriptions in stream order. */
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

/** Parses and checks the vmdesc JSON (`at`: its offset, for errors). */
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
  const desc = v as Record<string, unknown>;
  if (desc.page_size !== undefined && !isCount(desc.page_size)) {
    throw new FormatError(at, 'a vmdesc "page_size" that is a number', shortJson(desc.page_size), 'vmdesc');
  }
  for (const d of desc.devices as unknown[]) checkDescription(d, at, 'devices');
  if (desc.configuration !== undefined) checkDescription(desc.configuration, at, 'configuration');
  return v as VmDescription;
}

/** Deepest nesting of structs and subsections accepted (QEMU's own stay below 10). */
const MAX_VMSD_DEPTH = 64;

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function shortJson(x: unknown): string {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

/**
 * Checks the shape `payloadSize` relies on, without recursion: names are strings, sizes counts,
 * fields and subsections arrays of objects, nesting bounded.
 */
function checkDescription(root: unknown, at: number, rootPath: string): void {
  const bad = (path: string, what: string, found: unknown): never => {
    throw new FormatError(at, `${what} at ${path} in the vmdesc`, shortJson(found), 'vmdesc');
  };
  const stack: Array<{ d: unknown; path: string; depth: number }> = [{ d: root, path: rootPath, depth: 0 }];
  while (stack.length > 0) {
    const { d, path, depth } = stack.pop()!;
    if (!isObject(d)) bad(path, 'a device description object', d);
    const o = d as Record<string, unknown>;
    if (depth > MAX_VMSD_DEPTH) bad(path, `nesting of at most ${MAX_VMSD_DEPTH} levels`, `depth ${depth}`);
    for (const k of ['name', 'vmsd_name'] as const) if (o[k] !== undefined && typeof o[k] !== 'string') bad(`${path}.${k}`, 'a string', o[k]);
    for (const k of ['version', 'instance_id'] as const) if (o[k] !== undefined && !isCount(o[k])) bad(`${path}.${k}`, 'a non-negative integer', o[k]);
    if (o.fields !== undefined) {
      if (!Array.isArray(o.fields)) bad(`${path}.fields`, 'an array', o.fields);
      (o.fields as unknown[]).forEach((f, i) => {
        const fp = `${path}.fields[${i}]`;
        if (!isObject(f)) bad(fp, 'a field object', f);
        const field = f as Record<string, unknown>;
        if (!isCount(field.size)) bad(`${fp}.size`, 'a non-negative integer', field.size);
        if (field.array_len !== undefined && !isCount(field.array_len)) bad(`${fp}.array_len`, 'a non-negative integer', field.array_len);
        if (field.name !== undefined && typeof field.name !== 'string') bad(`${fp}.name`, 'a string', field.name);
        if (field.struct !== undefined) stack.push({ d: field.struct, path: `${fp}.struct`, depth: depth + 1 });
      });
    }
    if (o.subsections !== undefined) {
      if (!Array.isArray(o.subsections)) bad(`${path}.subsections`, 'an array', o.subsections);
      (o.subsections as unknown[]).forEach((s, i) => stack.push({ d: s, path: `${path}.subsections[${i}]`, depth: depth + 1 }));
    }
  }
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
