// The VMDESCRIPTION JSON after EOF: how QEMU describes every FULL device section (spec/format.md §6).
import { be32 } from '../format/bytes.js';
import { FormatError } from '../format/errors.js';

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

/**
 * Finds the vmdesc in the last bytes of a file: a 0x06 byte preceded by the EOF byte 0x00 whose
 * be32 length reaches exactly the end of the file, and whose text parses as JSON.
 */
export function locateVmdesc(tail: Uint8Array, tailOffset: number, fileSize: number): LocatedVmdesc | null {
  for (let i = tail.length - 5; i >= 1; i--) {
    if (tail[i] !== 0x06 || tail[i - 1] !== 0x00) continue;
    const p = tailOffset + i;
    if (be32(tail, i + 1) !== fileSize - (p + 5)) continue;
    const json = new TextDecoder().decode(tail.subarray(i + 5));
    try {
      return { offset: p, json, desc: parseVmdesc(json, p + 5) };
    } catch {
      continue;
    }
  }
  return null;
}

export function parseVmdesc(json: string, at: number): VmDescription {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new FormatError(at, 'vmdesc JSON', (e as Error).message);
  }
  if (typeof v !== 'object' || v === null || !Array.isArray((v as VmDescription).devices)) {
    throw new FormatError(at, 'vmdesc JSON object with a "devices" array');
  }
  return v as VmDescription;
}

/** Payload bytes of a device section as described: fields, then each subsection with its 6+n header. */
export function payloadSize(d: VmsdDescription, at: number, path = d.name ?? d.vmsd_name ?? '?'): number {
  let n = 0;
  for (const f of d.fields ?? []) {
    const count = f.array_len ?? 1;
    if (!Number.isSafeInteger(f.size) || f.size < 0 || !Number.isSafeInteger(count) || count < 0) {
      throw new FormatError(at, `a non-negative size for field ${path}.${f.name} in the vmdesc`, JSON.stringify(f.size));
    }
    n += f.size * count;
  }
  for (const s of d.subsections ?? []) {
    const name = s.vmsd_name ?? '';
    n += 2 + name.length + 4 + payloadSize(s, at, `${path}/${name}`);
  }
  if (!Number.isSafeInteger(n)) throw new FormatError(at, `a plausible size for ${path} in the vmdesc`, String(n));
  return n;
}
