// The CONFIGURATION record (0x07): machine type and validated capabilities (spec/format.md §2).
import {
  DEFAULT_TARGET_PAGE_SIZE,
  RecordType,
  SUBSECTION_CAPABILITIES,
  SUBSECTION_TARGET_PAGE_BITS,
  SUBSECTION_UUID,
} from '../format/constants.js';
import { FormatError } from '../format/errors.js';
import type { ByteReader } from './byte-reader.js';
import type { ByteWriter } from './byte-writer.js';

/** The CONFIGURATION record, decoded. */
export interface Configuration {
  machineType: string;
  /** Present only when the target's page size is variable (e.g. arm). */
  targetPageBits: number | null;
  /** null when the subsection is absent (no validated capability was on). */
  capabilities: string[] | null;
  /** 16 raw bytes as hex, or null. */
  uuid: string | null;
  /** Subsection names in stream order, for faithful re-encoding. */
  subsectionOrder: string[];
}

const MAX_CAPABILITIES = 256;

/** The target page size the configuration sets (4096 without target-page-bits). */
export function targetPageSize(c: Configuration | null): number {
  return c?.targetPageBits != null ? 2 ** c.targetPageBits : DEFAULT_TARGET_PAGE_SIZE;
}

/** Decodes the section after its type byte has been consumed. */
export function readConfiguration(r: ByteReader): Configuration {
  const lenAt = r.offset;
  const len = r.u32('machine type length');
  if (len > 255) throw new FormatError(lenAt, 'machine type name length of at most 255', String(len));
  const config: Configuration = { machineType: r.string(len, 'machine type name'), targetPageBits: null, capabilities: null, uuid: null, subsectionOrder: [] };
  while (!r.atEnd() && r.peekU8() === RecordType.Subsection) {
    r.u8('record type');
    const nameAt = r.offset;
    const name = r.countedString('subsection name');
    const versionAt = r.offset;
    const version = r.u32('subsection version');
    if (version !== 1) throw new FormatError(versionAt, `version 1 of ${name}`, String(version));
    config.subsectionOrder.push(name);
    if (name === SUBSECTION_TARGET_PAGE_BITS) {
      const at = r.offset;
      const bits = r.u32('target page bits');
      if (bits < 9 || bits > 20) throw new FormatError(at, 'target page bits between 9 and 20', String(bits));
      config.targetPageBits = bits;
    } else if (name === SUBSECTION_CAPABILITIES) {
      const at = r.offset;
      const count = r.u32('capability count');
      if (count > MAX_CAPABILITIES) throw new FormatError(at, `at most ${MAX_CAPABILITIES} capabilities`, String(count));
      config.capabilities = [];
      for (let i = 0; i < count; i++) config.capabilities.push(r.countedString('capability name'));
    } else if (name === SUBSECTION_UUID) {
      config.uuid = Buffer.from(r.take(16, 'uuid')).toString('hex');
    } else {
      throw new FormatError(nameAt, 'a known configuration subsection (target-page-bits, capabilities, uuid)', JSON.stringify(name));
    }
  }
  return config;
}

/** Encodes the whole record including its 0x07 type byte. */
export function writeConfiguration(w: ByteWriter, config: Configuration): void {
  w.u8(RecordType.Configuration);
  w.u32(config.machineType.length);
  w.string(config.machineType);
  const order = [...config.subsectionOrder];
  const want = (name: string, present: boolean) => {
    const i = order.indexOf(name);
    if (present && i < 0) order.push(name);
    if (!present && i >= 0) order.splice(i, 1);
  };
  want(SUBSECTION_TARGET_PAGE_BITS, config.targetPageBits !== null);
  want(SUBSECTION_CAPABILITIES, config.capabilities !== null);
  want(SUBSECTION_UUID, config.uuid !== null);
  for (const name of order) {
    w.u8(RecordType.Subsection);
    w.u8(name.length);
    w.string(name);
    w.u32(1);
    if (name === SUBSECTION_TARGET_PAGE_BITS) w.u32(config.targetPageBits!);
    else if (name === SUBSECTION_CAPABILITIES) {
      w.u32(config.capabilities!.length);
      for (const cap of config.capabilities!) {
        w.u8(cap.length);
        w.string(cap);
      }
    } else if (name === SUBSECTION_UUID) w.bytes(Buffer.from(config.uuid!, 'hex'));
  }
}
