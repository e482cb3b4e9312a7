// The pure, synchronous record decoder: bytes and a StreamState in, one record (or "need more
// bytes") out. No I/O and no async: a driver (records.ts) feeds it from a Cursor.
import {
  COMMANDS,
  MAPPED_RAM_HEADER_SIZE,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_FILE_VERSION_COMPAT,
  RAM_SECTION_IDSTR,
  RAM_SECTION_VERSION,
  RamFlag,
  RecordType,
} from '../format/constants.js';
import { be32, be64big } from '../format/bytes.js';
import { FormatError, hex, reclassify } from '../format/errors.js';
import { ByteReader, NeedMore } from './byte-reader.js';
import { readConfiguration } from './configuration.js';
import { hasNoAreas, readMappedRamHeader, readRamWord, rejectUnsupportedFlags, type RamBlockEntry } from './ram.js';
import type { MigrationRecord } from './record.js';
import { readCommand, readFooter, readFullHeader, SECTION_KIND_OF, type SectionHeader } from './section.js';
import type { Phase, StreamState } from './state.js';
import { parseVmdesc, payloadSize } from './vmdesc.js';

/** QEMU_VM_COMMAND codes (`enum qemu_vm_cmd`, migration/savevm.c). */
const OPEN_RETURN_PATH = 1;
const POSTCOPY_ADVISE = 3;

/** Bytes after the stream counted at most (QEMU reads none of them; a pipe may never end). */
export const MAX_TRAILING = 64 << 20;

/**
 * A span after the decoded bytes that the driver moves over: page data or a device payload (which
 * it may read into the record's `data` instead), or a mapped-ram block's page area.
 */
export interface Span {
  /** Absolute offset where decoding goes on. */
  to: number;
  /** What the span is, for the error when the input ends before `to`. */
  what: string;
  /** The span is the record's data ('page', 'device'), or skipped bytes (null). */
  data: 'page' | 'device' | null;
}

/** What one call of `decode` did. */
export type Decoded =
  /** `length` bytes were consumed; `record` is the next record (null: a step without one); `span` follows. */
  | { kind: 'step'; length: number; record: MigrationRecord | null; span: Span | null }
  /** The buffer ends early: call again with at least `bytes` bytes from the same start. */
  | { kind: 'need'; bytes: number }
  /** A device section is next and the state has no vmdesc to size it: set `state.vmdesc` and call again. */
  | { kind: 'vmdesc' }
  /** The input is over (after the EOF record and whatever follows it, or after a `stop`). */
  | { kind: 'end' };

type Step = { record: MigrationRecord | null; span?: Span | null } | 'vmdesc' | 'end';

/**
 * Decodes what follows in `bytes` (whose byte 0 is at `state.offset`) and advances `state`.
 * `final`: the bytes are all that is left of the input. The state only changes when a step
 * completes, so a "need" is answered by calling again with more bytes. Malformed input throws a
 * FormatError naming the absolute offset.
 */
export function decode(bytes: Uint8Array, state: StreamState, final = false): Decoded {
  const r = new ByteReader(bytes, state.offset, final);
  let step: Step;
  try {
    step = decodeStep(r, state);
  } catch (e) {
    if (e instanceof NeedMore) return { kind: 'need', bytes: e.bytes };
    throw e;
  }
  if (step === 'vmdesc' || step === 'end') return { kind: step };
  state.offset = step.span ? step.span.to : r.offset;
  return { kind: 'step', length: r.pos, record: step.record, span: step.span ?? null };
}

function decodeStep(r: ByteReader, state: StreamState): Step {
  const p = state.phase;
  switch (p.at) {
    case 'header':
      return fileHeader(r, state);
    case 'record':
      return topRecord(r, state);
    case 'ram-version':
      if (p.header.version !== RAM_SECTION_VERSION) throw new FormatError(p.sectionOffset, `RAM section version ${RAM_SECTION_VERSION}`, String(p.header.version));
      state.phase = { at: 'ram', header: p.header, sectionOffset: p.sectionOffset };
      return { record: null };
    case 'ram':
      return ramRecord(r, state, p);
    case 'blocks':
      return blockEntry(r, state, p);
    case 'jump':
      return pageAreaJump(state, p);
    case 'device':
      return devicePayload(r, state, p);
    case 'footer': {
      const at = r.offset;
      readFooter(r, p.header);
      state.phase = { at: 'record' };
      return { record: { type: 'section-footer', offset: at, sectionOffset: p.sectionOffset, header: p.header } };
    }
    case 'stop':
      state.phase = { at: 'done' };
      return { record: p.record };
    default:
      return tail(r, state, p);
  }
}

function fileHeader(r: ByteReader, state: StreamState): Step {
  const start = r.offset;
  try {
    r.need(8, 'QEMU migration file header');
  } catch (e) {
    throw reclassify(e, 'magic');
  }
  const magic = r.u32('magic');
  if (magic !== QEMU_VM_FILE_MAGIC) throw new FormatError(start, 'QEMU migration magic "QEVM" (0x5145564d)', hex(magic), 'magic');
  const version = r.u32('version');
  if (version === QEMU_VM_FILE_VERSION_COMPAT) throw new FormatError(start + 4, 'stream version 3 (version 2 is obsolete)', '2', 'version');
  if (version !== QEMU_VM_FILE_VERSION) throw new FormatError(start + 4, 'stream version 3', String(version), 'version');
  state.version = version;
  state.phase = { at: 'record' };
  return { record: { type: 'header', offset: start, version } };
}

/** A record at the top level: configuration, command, EOF, or a section header. */
function topRecord(r: ByteReader, state: StreamState): Step {
  const at = r.offset;
  let type: number;
  // The input may only end after the EOF record: ending at a record boundary is 'no-eof'.
  try {
    type = r.u8('a record type');
  } catch (e) {
    throw reclassify(e, 'no-eof');
  }
  if (type === RecordType.Configuration) {
    if (at !== state.start + 8) throw new FormatError(at, 'the configuration section only right after the file header');
    let config;
    try {
      config = readConfiguration(r);
    } catch (e) {
      throw reclassify(e, 'configuration');
    }
    state.configure(config);
    return { record: { type: 'configuration', offset: at, length: r.offset - at, config } };
  }
  if (type === RecordType.Command) {
    const command = readCommand(r);
    // QEMU answers a PING on the return path; loading a file, it has one only after OPEN_RETURN_PATH.
    if (COMMANDS.get(command.cmd)!.needsReturnPath && !state.returnPath) {
      throw new FormatError(at + 1, `OPEN_RETURN_PATH before ${command.name} (QEMU refuses it with no return path)`, command.name);
    }
    if (command.cmd === OPEN_RETURN_PATH) state.returnPath = true;
    // postcopy-ram advises the OR of every block's host page size; blocks whose size differs
    // from the host's then carry it in their entry.
    if (command.cmd === POSTCOPY_ADVISE && command.data.length === 16) state.postcopyPageSizes = be64big(command.data, 0);
    return { record: { type: 'command', offset: at, command } };
  }
  if (type === RecordType.Eof) {
    if (state.ramOpen) throw new FormatError(at, 'the RAM END section before the EOF record (the stream ends early: not a complete migration)', 'EOF', 'no-eof');
    state.phase = { at: 'tail' };
    return { record: { type: 'eof', offset: at } };
  }
  return sectionHeader(r, state, type, at);
}

function sectionHeader(r: ByteReader, state: StreamState, type: number, at: number): Step {
  const kind = SECTION_KIND_OF[type];
  if (!kind) throw new FormatError(at, 'a record type (0x00-0x04, 0x07, 0x08)', hex(type));
  let header: SectionHeader;
  if (kind === 'start' || kind === 'full') {
    header = readFullHeader(r, kind);
    if (kind === 'start') state.sections.set(header.sectionId, header);
  } else {
    const id = r.u32('section id');
    const started = state.sections.get(id);
    if (!started) throw new FormatError(at + 1, 'the id of a section opened by a START record', String(id));
    header = { ...started, kind };
  }
  const sectionOffset = at;
  if (header.idstr === RAM_SECTION_IDSTR && header.instanceId === 0) {
    if (kind === 'start') state.ramOpen = true;
    else if (kind === 'end') state.ramOpen = false;
    state.phase = { at: 'ram-version', header, sectionOffset };
  } else if (kind === 'full') {
    state.phase = { at: 'device', header, sectionOffset };
  } else {
    const reason = `cannot size the ${kind} section of iterative device ${JSON.stringify(header.idstr)} (only "ram" is understood)`;
    state.phase = { at: 'stop', record: { type: 'stop', offset: at, kind: 'iterative', reason } };
  }
  return { record: { type: 'section', offset: at, header } };
}

type RamPhase = Extract<Phase, { at: 'ram' }>;

/** One RAM record: EOS, MEM_SIZE (its block entries follow), MULTIFD_FLUSH, PAGE or ZERO. */
function ramRecord(r: ByteReader, state: StreamState, p: RamPhase): Step {
  const w = readRamWord(r, state.pageSize);
  rejectUnsupportedFlags(w);
  const flags = w.flags & ~RamFlag.CONTINUE;
  if (flags === RamFlag.EOS) {
    state.phase = { at: 'footer', header: p.header, sectionOffset: p.sectionOffset };
    return { record: { type: 'ram-eos', offset: w.at } };
  }
  if (flags === RamFlag.MEM_SIZE) {
    if (w.addr > 0) state.phase = { ...p, at: 'blocks', left: w.addr };
    return { record: { type: 'ram-mem-size', offset: w.at, total: w.addr } };
  }
  if (flags === RamFlag.MULTIFD_FLUSH) {
    if (state.mappedRam) throw new FormatError(w.at, 'no MULTIFD_FLUSH in a mapped-ram file', hex(w.flags));
    return { record: { type: 'ram-flush', offset: w.at } };
  }
  if (flags !== RamFlag.PAGE && flags !== RamFlag.ZERO) throw new FormatError(w.at, 'a known combination of RAM record flags', hex(w.flags));
  if (state.mappedRam) throw new FormatError(w.at, 'no page records in a mapped-ram file (pages live in the page area)', hex(w.flags), 'mapped-ram');
  const continued = (w.flags & RamFlag.CONTINUE) !== 0;
  let block = state.current;
  if (continued) {
    if (!block) throw new FormatError(w.at, 'a block name before the first CONTINUE page record');
  } else {
    const nameAt = r.offset;
    const idstr = r.countedString('RAM block name');
    block = state.blocks.get(idstr) ?? null;
    if (!block) throw new FormatError(nameAt, 'a RAM block declared in the MEM_SIZE record', JSON.stringify(idstr));
  }
  const ps = state.pageSize;
  if (w.addr + ps > block!.usedLength) throw new FormatError(w.at, `a page inside block ${JSON.stringify(block!.idstr)} (length ${block!.usedLength})`, `address ${hex(w.addr)}`);
  const pageIndex = w.addr / ps;
  if (flags === RamFlag.ZERO) {
    const fill = r.u8('zero page fill byte');
    state.current = block;
    return { record: { type: 'ram-zero', offset: w.at, block: block!, pageIndex, fill, continued } };
  }
  state.current = block;
  const dataOffset = r.offset;
  const record: MigrationRecord = { type: 'ram-page', offset: w.at, block: block!, pageIndex, dataOffset, data: null, continued };
  return { record, span: { to: dataOffset + ps, what: 'page data', data: 'page' } };
}

type BlocksPhase = Extract<Phase, { at: 'blocks' }>;

/** One block entry of a MEM_SIZE record (with its mapped-ram header when the blocks carry one). */
function blockEntry(r: ByteReader, state: StreamState, p: BlocksPhase): Step {
  const entryOffset = r.offset;
  const n = r.u8('RAM block name length');
  if (n === 0) throw new FormatError(entryOffset, 'a RAM block name of 1 to 255 bytes', 'length 0');
  const idstr = r.string(n, 'RAM block name');
  if (state.blocks.has(idstr)) throw new FormatError(entryOffset, `RAM block ${JSON.stringify(idstr)} declared once`, 'declared twice');
  const usedLength = r.u64('RAM block used length');
  const ps = state.pageSize;
  if (usedLength % ps !== 0) throw new FormatError(entryOffset + 1 + n, `a used length that is a multiple of the page size ${ps}`, String(usedLength));
  const blockPageSize = readBlockPageSize(r, state);
  if (blockPageSize !== null && usedLength % blockPageSize !== 0) throw new FormatError(entryOffset + 1 + n, `a used length that is a multiple of the block's page size ${blockPageSize}`, String(usedLength));
  const mrAddr = state.ignoreShared ? r.u64('RAM block guest address') : null;
  const headerOffset = r.offset;
  const mappedRam = state.encodingResolved ? state.mappedRam : resolveEncoding(r, state, idstr, headerOffset);
  const h = mappedRam ? readMappedRamHeader(r, idstr) : null;
  const entry: RamBlockEntry = { idstr, usedLength, entryOffset, blockPageSize, mrAddr, mappedRam: h ? { ...h, headerOffset } : null };
  if (usedLength > p.left) throw new FormatError(entryOffset, `block length within the remaining MEM_SIZE total ${p.left}`, String(usedLength));
  state.blocks.set(idstr, entry);
  const left = p.left - usedLength;
  const ram: RamPhase = { at: 'ram', header: p.header, sectionOffset: p.sectionOffset };
  state.phase = h ? { ...ram, at: 'jump', left, entry } : left > 0 ? { ...p, left } : ram;
  return { record: { type: 'ram-block', offset: entryOffset, entry } };
}

/**
 * Decides at the first block entry whether the blocks carry mapped-ram headers: as configured, or
 * (encoding 'as-found') as the 28 bytes after the entry show, noting a contradiction in the state.
 */
function resolveEncoding(r: ByteReader, state: StreamState, idstr: string, headerOffset: number): boolean {
  const configured = state.mappedRam;
  let found = configured;
  if (state.encoding === 'as-found') {
    if (r.left < MAPPED_RAM_HEADER_SIZE && !r.final) throw new NeedMore(r.pos + MAPPED_RAM_HEADER_SIZE);
    if (r.left >= MAPPED_RAM_HEADER_SIZE) found = sniffEncoding(r.bytes.subarray(r.pos, r.pos + MAPPED_RAM_HEADER_SIZE), headerOffset, state.pageSize, configured);
  }
  state.encodingResolved = true;
  state.mappedRam = found;
  if (found !== configured) state.encodingMismatch = { idstr, headerOffset, configured };
  return found;
}

/** The encoding the bytes after the first block entry show; `configured` unless they clearly show the other. */
function sniffEncoding(raw: Uint8Array, headerOffset: number, pageSize: number, configured: boolean): boolean {
  const looksMapped = be32(raw, 0) <= 1 && Number(be64big(raw, 4)) === pageSize && Number(be64big(raw, 12)) === headerOffset + MAPPED_RAM_HEADER_SIZE;
  if (!configured && looksMapped) return true;
  if (configured && !looksMapped && looksLikeStreamEntry(raw)) return false;
  return configured;
}

/** Plain-stream bytes after a used length: the next entry (u8 length + printable idstr + be64) or the EOS word. */
function looksLikeStreamEntry(b: Uint8Array): boolean {
  if (be32(b, 0) === 0 && be32(b, 4) === RamFlag.EOS) return true;
  const n = b[0]!;
  if (n === 0 || n + 1 > b.length) return false;
  for (let i = 1; i <= n; i++) if (b[i]! < 0x20 || b[i]! > 0x7e) return false;
  return true;
}

/**
 * The optional be64 page size after a used length. The stream does not flag it: it is there when
 * postcopy-ram advised page sizes larger than the target's and the next 8 bytes are one of them
 * (a power of two above the target page size that the advised summary holds). The alternatives
 * cannot be: the next entry starts with a non-zero name length, the EOS word is 0x10, and a guest
 * address equal to such a size (x-ignore-shared as well) is the one ambiguous case.
 */
function readBlockPageSize(r: ByteReader, state: StreamState): number | null {
  const advised = state.postcopyPageSizes;
  const ps = BigInt(state.pageSize);
  if (advised === null || (advised & ~ps) === 0n) return null;
  r.need(8, 'RAM block page size or what follows the used length');
  const v = be64big(r.bytes, r.pos);
  if (v <= ps || (v & (v - 1n)) !== 0n || (v & advised) === 0n) return null;
  r.pos += 8;
  return Number(v);
}

/** Moves past a mapped-ram block's page area (its alignment is for consumers to judge). */
function pageAreaJump(state: StreamState, p: Extract<Phase, { at: 'jump' }>): Step {
  const { entry, left } = p;
  const { headerOffset, bitmapOffset, pagesOffset } = entry.mappedRam!;
  const ram: RamPhase = { at: 'ram', header: p.header, sectionOffset: p.sectionOffset };
  state.phase = left > 0 ? { ...ram, at: 'blocks', left } : ram;
  // Blocks x-ignore-shared left out (QEMU 11+) have no areas and no jump; a 0/0 header without
  // the capability is handed on too, for the reader to refuse and verify to name.
  if (hasNoAreas({ bitmapOffset, pagesOffset })) return { record: null };
  const idstr = JSON.stringify(entry.idstr);
  // A page area behind its own header would send the walk backwards (a loop when used length is 0).
  if (pagesOffset < headerOffset + MAPPED_RAM_HEADER_SIZE) {
    throw new FormatError(headerOffset + 20, `the page area of block ${idstr} after its header (${hex(headerOffset + MAPPED_RAM_HEADER_SIZE)})`, hex(pagesOffset), 'overlap');
  }
  return { record: null, span: { to: pagesOffset + entry.usedLength, what: `end of the page area of block ${idstr}`, data: null } };
}

/** The payload of a FULL device section, sized by its vmdesc entry; without one the walk stops. */
function devicePayload(r: ByteReader, state: StreamState, p: Extract<Phase, { at: 'device' }>): Step {
  if (state.vmdesc === undefined) return 'vmdesc';
  const { header, sectionOffset: at } = p;
  const vmdesc = state.vmdesc;
  const i = state.deviceIndex;
  const device = vmdesc?.desc.devices[i];
  if (!device) {
    const why = vmdesc ? `the vmdesc describes ${vmdesc.desc.devices.length} devices, this is device ${i + 1}` : 'the file has no vmdesc';
    state.phase = { at: 'done' };
    return { record: { type: 'stop', offset: at, kind: vmdesc ? 'vmdesc-short' : 'no-vmdesc', reason: `cannot size device section ${JSON.stringify(header.idstr)}: ${why}` } };
  }
  if (device.name !== header.idstr || (device.instance_id ?? 0) !== header.instanceId) {
    throw new FormatError(at, `device ${JSON.stringify(device.name)} instance ${device.instance_id ?? 0} (vmdesc entry ${i})`, `${JSON.stringify(header.idstr)} instance ${header.instanceId}`, 'device');
  }
  const length = payloadSize(device, vmdesc!.offset);
  const payloadAt = r.offset;
  state.deviceIndex++;
  state.phase = { at: 'footer', header, sectionOffset: at };
  const record: MigrationRecord = { type: 'device-state', offset: payloadAt, length, header, device, deviceIndex: i, data: null };
  return { record, span: { to: payloadAt + length, what: `payload of device ${JSON.stringify(header.idstr)}`, data: 'device' } };
}

type TailPhase = Extract<Phase, { at: 'tail' | 'vmdesc-json' | 'after-vmdesc' | 'trailing' | 'done' }>;

/** After the EOF record: the vmdesc, then bytes QEMU never reads (counted, up to MAX_TRAILING). */
function tail(r: ByteReader, state: StreamState, p: TailPhase): Step {
  switch (p.at) {
    case 'tail': {
      if (r.atEnd()) return finish(state);
      const at = r.offset;
      if (r.u8('vmdesc record type') !== RecordType.VmDescription) {
        state.phase = { at: 'trailing', offset: at, head: 1, counted: 0 };
        return { record: null };
      }
      try {
        state.phase = { at: 'vmdesc-json', offset: at, length: r.u32('vmdesc length') };
      } catch (e) {
        throw reclassify(e, 'vmdesc');
      }
      return { record: null };
    }
    case 'vmdesc-json': {
      let json: string;
      try {
        json = new TextDecoder().decode(r.take(p.length, 'vmdesc JSON'));
        state.phase = { at: 'after-vmdesc' };
        return { record: { type: 'vmdesc', offset: p.offset, length: 5 + p.length, vmdesc: { offset: p.offset, json, desc: parseVmdesc(json, p.offset + 5) } } };
      } catch (e) {
        throw reclassify(e, 'vmdesc');
      }
    }
    case 'after-vmdesc':
      if (r.atEnd()) return finish(state);
      state.phase = { at: 'trailing', offset: r.offset, head: 0, counted: 0 };
      return { record: null };
    case 'trailing': {
      const more = r.left > 0;
      if (!more && !r.final) throw new NeedMore(1);
      if (more && p.counted < MAX_TRAILING) {
        state.phase = { ...p, counted: p.counted + r.left };
        r.pos = r.bytes.length;
        return { record: null };
      }
      state.phase = { at: 'done' };
      return { record: { type: 'trailing', offset: p.offset, length: p.head + p.counted, more } };
    }
    case 'done':
      return 'end';
  }
}

function finish(state: StreamState): 'end' {
  state.phase = { at: 'done' };
  return 'end';
}
