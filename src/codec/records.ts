// Decodes a migration stream into typed records, one at a time (the core every reader builds on).
import {
  MAPPED_RAM_HEADER_SIZE,
  CAPABILITY_MAPPED_RAM,
  CAPABILITY_X_IGNORE_SHARED,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_FILE_VERSION_COMPAT,
  RAM_SECTION_IDSTR,
  RAM_SECTION_VERSION,
  RamFlag,
  RecordType,
} from '../format/constants.js';
import { FormatError, hex, reclassify } from '../format/errors.js';
import { be32, be64big } from '../format/bytes.js';
import { MAX_BUFFERED_RECORD, type Cursor } from '../io/cursor.js';
import { readConfiguration, targetPageSize, type Configuration } from './configuration.js';
import { hasNoAreas, readMappedRamHeader, readRamWord, rejectUnsupportedFlags, type RamBlockEntry } from './ram.js';
import { readCommand, readFooter, readFullHeader, SECTION_KIND_OF, type Command, type SectionHeader } from './section.js';
import { locateVmdesc, parseVmdesc, payloadSize, type LocatedVmdesc, type VmsdDescription } from './vmdesc.js';

/** QEMU_VM_COMMAND POSTCOPY_ADVISE (`enum qemu_vm_cmd`, migration/savevm.c). */
const POSTCOPY_ADVISE = 3;

export type MigrationRecord =
  | { type: 'header'; offset: number; version: number }
  | { type: 'configuration'; offset: number; length: number; config: Configuration }
  | { type: 'command'; offset: number; command: Command }
  /** A section begins; its payload records follow, then `section-footer`. */
  | { type: 'section'; offset: number; header: SectionHeader }
  | { type: 'ram-mem-size'; offset: number; total: number }
  /**
   * A block entry; with a mapped-ram header its fields are as found (any version, any sane page
   * size: consumers judge them). The jump over its page area follows this record.
   */
  | { type: 'ram-block'; offset: number; entry: RamBlockEntry }
  /** `data` is a view valid until the next record (only with `pageData`). */
  | { type: 'ram-page'; offset: number; block: RamBlockEntry; pageIndex: number; dataOffset: number; data: Uint8Array | null }
  | { type: 'ram-zero'; offset: number; block: RamBlockEntry; pageIndex: number; fill: number }
  | { type: 'ram-flush'; offset: number }
  | { type: 'ram-eos'; offset: number }
  /**
   * Payload of a FULL device section, sized by `device` (entry `deviceIndex` of the vmdesc, whose
   * name and instance match the header; its `version` is not checked); `data` only with `deviceData`.
   */
  | { type: 'device-state'; offset: number; length: number; header: SectionHeader; device: VmsdDescription; deviceIndex: number; data: Uint8Array | null }
  /** Footer consumed; the section spans [sectionOffset, offset + 5). */
  | { type: 'section-footer'; offset: number; sectionOffset: number; header: SectionHeader }
  | { type: 'eof'; offset: number }
  | { type: 'vmdesc'; offset: number; length: number; vmdesc: LocatedVmdesc }
  /** Bytes after the stream (QEMU never writes any); counted up to 64 MiB, `more` when the input goes on. */
  | { type: 'trailing'; offset: number; length: number; more: boolean }
  /**
   * Parsing cannot go on without guessing: the walk ends here. `kind`: no vmdesc to size a FULL
   * device section, a vmdesc listing fewer devices than the stream holds, or an iterative section
   * of a device other than "ram".
   */
  | { type: 'stop'; offset: number; kind: StopKind; reason: string };

export type StopKind = 'no-vmdesc' | 'vmdesc-short' | 'iterative';

export interface ReadRecordsOptions {
  /** Hand out page data views with `ram-page` records (else page data is skipped). */
  pageData?: boolean;
  /** Hand out device payloads with `device-state` records. */
  deviceData?: boolean;
  /**
   * The vmdesc, when the caller located it already (e.g. from the end of a file); null = the file
   * has none. Left undefined, the rest of the input is buffered at the first device section to find it.
   */
  vmdesc?: LocatedVmdesc | null;
  /** Total input size when known (for the lazy vmdesc search on files). */
  inputSize?: number;
  /**
   * Fast path for converters: buffered CONTINUE pages of a plain stream are handed here instead of
   * being yielded (`data` null = ZERO page with fill 0; the view is valid during the call only).
   */
  onPage?: (block: RamBlockEntry, pageIndex: number, data: Uint8Array | null) => void | Promise<void>;
  /**
   * Bulk fast path, tried before `onPage`: offered the buffered bytes that start with CONTINUE page
   * records of `block`, it consumes whole records it can take (same checks as below) and returns
   * their byte count; 0 hands the next record to the per-record path.
   */
  onPageRecords?: (block: RamBlockEntry, buffered: Uint8Array) => number;
  /**
   * Decides whether the blocks carry mapped-ram headers, called once at the first block entry with
   * the offset right after it and what the configuration says (default: as configured).
   */
  mappedRam?: (first: { idstr: string; headerOffset: number; configured: boolean }) => boolean | Promise<boolean>;
}

/**
 * A device section whose version differs from the one its vmdesc entry records (both written by
 * the same QEMU): QEMU's loader refuses it ("unsupported version", "too old"). Null when they agree.
 */
export function deviceVersionMismatch(r: Extract<MigrationRecord, { type: 'device-state' }>): FormatError | null {
  if (r.device.version === undefined || r.device.version === r.header.version) return null;
  return new FormatError(r.offset, `device section ${JSON.stringify(r.header.idstr)} at version ${r.device.version}, as its vmdesc entry records`, `version ${r.header.version}`, 'device');
}

export async function* readRecords(c: Cursor, opts: ReadRecordsOptions = {}): AsyncGenerator<MigrationRecord, void, undefined> {
  const start = c.offset;
  await c.need(8, 'QEMU migration file header').catch((e) => {
    throw reclassify(e, 'magic');
  });
  const magic = c.u32();
  if (magic !== QEMU_VM_FILE_MAGIC) throw new FormatError(start, 'QEMU migration magic "QEVM" (0x5145564d)', hex(magic), 'magic');
  const version = c.u32();
  if (version === QEMU_VM_FILE_VERSION_COMPAT) throw new FormatError(start + 4, 'stream version 3 (version 2 is obsolete)', '2', 'version');
  if (version !== QEMU_VM_FILE_VERSION) throw new FormatError(start + 4, 'stream version 3', String(version), 'version');
  yield { type: 'header', offset: start, version };

  let config: Configuration | null = null;
  let pageSize = targetPageSize(null);
  let mappedRam = false;
  let ignoreShared = false;
  const sections = new Map<number, SectionHeader>();
  const blocks = new Map<string, RamBlockEntry>();
  // QEMU's loader keeps the last block across sections, so a CONTINUE page may start a PART section.
  let current: RamBlockEntry | null = null;
  let vmdesc = opts.vmdesc;
  let deviceIndex = 0;
  let encodingResolved = false;
  let postcopyPageSizes: bigint | null = null;
  // A RAM START without its END before EOF: the stream lost its tail (e.g. a PART type byte became EOF).
  let ramOpen = false;

  for (;;) {
    const at = c.offset;
    // The input may only end after the EOF record: ending at a record boundary is 'no-eof'.
    const type = await c.readU8('a record type').catch((e) => {
      throw reclassify(e, 'no-eof');
    });
    if (type === RecordType.Configuration) {
      if (at !== start + 8) throw new FormatError(at, 'the configuration section only right after the file header');
      config = await readConfiguration(c).catch((e) => {
        throw reclassify(e, 'configuration');
      });
      pageSize = targetPageSize(config);
      mappedRam = config.capabilities?.includes(CAPABILITY_MAPPED_RAM) ?? false;
      ignoreShared = config.capabilities?.includes(CAPABILITY_X_IGNORE_SHARED) ?? false;
      yield { type: 'configuration', offset: at, length: c.offset - at, config };
      continue;
    }
    if (type === RecordType.Command) {
      const command = await readCommand(c);
      // postcopy-ram advises the OR of every block's host page size; blocks whose size differs
      // from the host's then carry it in their entry.
      if (command.cmd === POSTCOPY_ADVISE && command.data.length === 16) postcopyPageSizes = be64big(command.data, 0);
      yield { type: 'command', offset: at, command };
      continue;
    }
    if (type === RecordType.Eof) {
      if (ramOpen) throw new FormatError(at, 'the RAM END section before the EOF record (the stream ends early: not a complete migration)', 'EOF', 'no-eof');
      yield { type: 'eof', offset: at };
      yield* readTail(c);
      return;
    }
    const kind = SECTION_KIND_OF[type];
    if (!kind) throw new FormatError(at, 'a record type (0x00-0x04, 0x07, 0x08)', hex(type));

    let header: SectionHeader;
    if (kind === 'start' || kind === 'full') {
      header = await readFullHeader(c, kind);
      if (kind === 'start') sections.set(header.sectionId, header);
    } else {
      const id = await c.readU32('section id');
      const started = sections.get(id);
      if (!started) throw new FormatError(at + 1, 'the id of a section opened by a START record', String(id));
      header = { ...started, kind };
    }
    yield { type: 'section', offset: at, header };

    if (header.idstr === RAM_SECTION_IDSTR && header.instanceId === 0) {
      if (kind === 'start') ramOpen = true;
      else if (kind === 'end') ramOpen = false;
      if (header.version !== RAM_SECTION_VERSION) throw new FormatError(at, `RAM section version ${RAM_SECTION_VERSION}`, String(header.version));
      yield* readRamPayload();
    } else if (kind === 'full') {
      if (vmdesc === undefined) vmdesc = await findVmdescAhead(c, opts.inputSize);
      const device = vmdesc?.desc.devices[deviceIndex];
      if (!device) {
        const why = vmdesc ? `the vmdesc describes ${vmdesc.desc.devices.length} devices, this is device ${deviceIndex + 1}` : 'the file has no vmdesc';
        yield { type: 'stop', offset: at, kind: vmdesc ? 'vmdesc-short' : 'no-vmdesc', reason: `cannot size device section ${JSON.stringify(header.idstr)}: ${why}` };
        return;
      }
      if (device.name !== header.idstr || (device.instance_id ?? 0) !== header.instanceId) {
        throw new FormatError(at, `device ${JSON.stringify(device.name)} instance ${device.instance_id ?? 0} (vmdesc entry ${deviceIndex})`, `${JSON.stringify(header.idstr)} instance ${header.instanceId}`, 'device');
      }
      const length = payloadSize(device, vmdesc!.offset);
      const payloadAt = c.offset;
      let data: Uint8Array | null = null;
      if (opts.deviceData) data = await c.readBytes(length, `payload of device ${JSON.stringify(header.idstr)}`);
      else await c.skip(length, `payload of device ${JSON.stringify(header.idstr)}`);
      yield { type: 'device-state', offset: payloadAt, length, header, device, deviceIndex, data };
      deviceIndex++;
    } else {
      yield { type: 'stop', offset: at, kind: 'iterative', reason: `cannot size the ${kind} section of iterative device ${JSON.stringify(header.idstr)} (only "ram" is understood)` };
      return;
    }
    const footerAt = c.offset;
    await readFooter(c, header);
    yield { type: 'section-footer', offset: footerAt, sectionOffset: at, header };
  }

  async function* readRamPayload(): AsyncGenerator<MigrationRecord, void, undefined> {
    for (;;) {
      if (opts.onPage && current && !mappedRam) await handBufferedPages(opts.onPage, current);
      const w = await readRamWord(c, pageSize);
      rejectUnsupportedFlags(w);
      const flags = w.flags & ~RamFlag.CONTINUE;
      if (flags === RamFlag.EOS) {
        yield { type: 'ram-eos', offset: w.at };
        return;
      }
      if (flags === RamFlag.MEM_SIZE) {
        yield { type: 'ram-mem-size', offset: w.at, total: w.addr };
        let left = w.addr;
        while (left > 0) {
          const entry = await readBlockEntry();
          if (entry.usedLength > left) throw new FormatError(entry.entryOffset, `block length within the remaining MEM_SIZE total ${left}`, String(entry.usedLength));
          left -= entry.usedLength;
          blocks.set(entry.idstr, entry);
          yield { type: 'ram-block', offset: entry.entryOffset, entry };
          if (entry.mappedRam) await jumpPageArea(entry);
        }
        continue;
      }
      if (flags === RamFlag.MULTIFD_FLUSH) {
        if (mappedRam) throw new FormatError(w.at, 'no MULTIFD_FLUSH in a mapped-ram file', hex(w.flags));
        yield { type: 'ram-flush', offset: w.at };
        continue;
      }
      if (flags !== RamFlag.PAGE && flags !== RamFlag.ZERO) throw new FormatError(w.at, 'a known combination of RAM record flags', hex(w.flags));
      if (mappedRam) throw new FormatError(w.at, 'no page records in a mapped-ram file (pages live in the page area)', hex(w.flags), 'mapped-ram');
      if (w.flags & RamFlag.CONTINUE) {
        if (!current) throw new FormatError(w.at, 'a block name before the first CONTINUE page record');
      } else {
        const nameAt = c.offset;
        const idstr = await c.readCountedString('RAM block name');
        current = blocks.get(idstr) ?? null;
        if (!current) throw new FormatError(nameAt, 'a RAM block declared in the MEM_SIZE record', JSON.stringify(idstr));
      }
      const block: RamBlockEntry = current!;
      if (w.addr + pageSize > block.usedLength) throw new FormatError(w.at, `a page inside block ${JSON.stringify(block.idstr)} (length ${block.usedLength})`, `address ${hex(w.addr)}`);
      const pageIndex = w.addr / pageSize;
      if (flags === RamFlag.ZERO) {
        const fill = await c.readU8('zero page fill byte');
        yield { type: 'ram-zero', offset: w.at, block, pageIndex, fill };
      } else {
        const dataOffset = c.offset;
        let data: Uint8Array | null = null;
        if (opts.pageData) data = await c.readBytes(pageSize, 'page data');
        else await c.skip(pageSize, 'page data');
        yield { type: 'ram-page', offset: w.at, block, pageIndex, dataOffset, data };
      }
    }
  }

  /** Consumes CONTINUE PAGE/ZERO records while whole ones are buffered, without a generator round trip each. */
  async function handBufferedPages(onPage: NonNullable<ReadRecordsOptions['onPage']>, block: RamBlockEntry): Promise<void> {
    const mask = pageSize - 1;
    for (;;) {
      if (c.buffered < 9) return;
      if (opts.onPageRecords) {
        const used = opts.onPageRecords(block, c.peek(c.buffered));
        if (used > 0) {
          c.bytes(used);
          continue;
        }
      }
      const head = c.peek(9);
      const hi = be32(head, 0);
      const lo = be32(head, 4);
      const flags = lo & mask;
      const zero = flags === (RamFlag.ZERO | RamFlag.CONTINUE);
      if (!(zero || flags === (RamFlag.PAGE | RamFlag.CONTINUE)) || hi >= 0x20_0000) return;
      const addr = hi * 0x1_0000_0000 + ((lo & ~mask) >>> 0);
      // Anything unusual (out of range, non-zero fill) takes the checked path.
      if (addr + pageSize > block.usedLength || (zero && head[8] !== 0) || (!zero && c.buffered < 8 + pageSize)) return;
      c.bytes(8);
      const data = zero ? null : c.bytes(pageSize);
      if (zero) c.u8();
      const r = onPage(block, addr / pageSize, data);
      if (r) await r;
    }
  }

  async function readBlockEntry(): Promise<RamBlockEntry> {
    const entryOffset = c.offset;
    const n = await c.readU8('RAM block name length');
    if (n === 0) throw new FormatError(entryOffset, 'a RAM block name of 1 to 255 bytes', 'length 0');
    await c.need(n, 'RAM block name');
    const idstr = c.string(n);
    if (blocks.has(idstr)) throw new FormatError(entryOffset, `RAM block ${JSON.stringify(idstr)} declared once`, 'declared twice');
    const usedLength = await c.readU64('RAM block used length');
    if (usedLength % pageSize !== 0) throw new FormatError(entryOffset + 1 + n, `a used length that is a multiple of the page size ${pageSize}`, String(usedLength));
    const blockPageSize = await readBlockPageSize();
    if (blockPageSize !== null && usedLength % blockPageSize !== 0) throw new FormatError(entryOffset + 1 + n, `a used length that is a multiple of the block's page size ${blockPageSize}`, String(usedLength));
    const mrAddr = ignoreShared ? await c.readU64('RAM block guest address') : null;
    const headerOffset = c.offset;
    if (!encodingResolved) {
      encodingResolved = true;
      if (opts.mappedRam) mappedRam = await opts.mappedRam({ idstr, headerOffset, configured: mappedRam });
    }
    if (!mappedRam) return { idstr, usedLength, entryOffset, blockPageSize, mrAddr, mappedRam: null };
    const h = await readMappedRamHeader(c, idstr);
    return { idstr, usedLength, entryOffset, blockPageSize, mrAddr, mappedRam: { ...h, headerOffset } };
  }

  /**
   * The optional be64 page size after a used length. The stream does not flag it: it is there when
   * postcopy-ram advised page sizes larger than the target's and the next 8 bytes are one of them
   * (a power of two above the target page size that the advised summary holds). The alternatives
   * cannot be: the next entry starts with a non-zero name length, the EOS word is 0x10, and a guest
   * address equal to such a size (x-ignore-shared as well) is the one ambiguous case.
   */
  async function readBlockPageSize(): Promise<number | null> {
    if (postcopyPageSizes === null || (postcopyPageSizes & ~BigInt(pageSize)) === 0n) return null;
    await c.need(8, 'RAM block page size or what follows the used length');
    const v = be64big(c.peek(8), 0);
    if (v <= BigInt(pageSize) || (v & (v - 1n)) !== 0n || (v & postcopyPageSizes) === 0n) return null;
    c.bytes(8);
    return Number(v);
  }

  /** Moves past a mapped-ram block's page area (its alignment is for consumers to judge). */
  async function jumpPageArea(entry: RamBlockEntry): Promise<void> {
    const { headerOffset, bitmapOffset, pagesOffset } = entry.mappedRam!;
    // Blocks x-ignore-shared left out (QEMU 11+) have no areas and no jump; a 0/0 header without
    // the capability is handed on too, for the reader to refuse and verify to name.
    if (hasNoAreas({ bitmapOffset, pagesOffset })) return;
    const idstr = JSON.stringify(entry.idstr);
    // A page area behind its own header would send the walk backwards (a loop when used length is 0).
    if (pagesOffset < headerOffset + MAPPED_RAM_HEADER_SIZE) {
      throw new FormatError(headerOffset + 20, `the page area of block ${idstr} after its header (${hex(headerOffset + MAPPED_RAM_HEADER_SIZE)})`, hex(pagesOffset), 'overlap');
    }
    await c.seek(pagesOffset + entry.usedLength, `end of the page area of block ${idstr}`);
  }
}

async function* readTail(c: Cursor): AsyncGenerator<MigrationRecord, void, undefined> {
  if (await c.atEnd()) return;
  const at = c.offset;
  const type = await c.readU8('vmdesc record type');
  if (type !== RecordType.VmDescription) {
    const d = await drain(c);
    yield { type: 'trailing', offset: at, length: 1 + d.length, more: d.more };
    return;
  }
  let vmdesc: LocatedVmdesc;
  try {
    const len = await c.readU32('vmdesc length');
    const json = new TextDecoder().decode(await c.readBytes(len, 'vmdesc JSON'));
    vmdesc = { offset: at, json, desc: parseVmdesc(json, at + 5) };
  } catch (e) {
    throw reclassify(e, 'vmdesc');
  }
  yield { type: 'vmdesc', offset: at, length: c.offset - at, vmdesc };
  if (!(await c.atEnd())) {
    const tailAt = c.offset;
    const d = await drain(c);
    yield { type: 'trailing', offset: tailAt, length: d.length, more: d.more };
  }
}

/** Bytes after the stream counted at most (QEMU reads none of them; a pipe may never end). */
const MAX_DRAIN = 64 << 20;

async function drain(c: Cursor): Promise<{ length: number; more: boolean }> {
  let n = 0;
  while (!(await c.atEnd())) {
    if (n >= MAX_DRAIN) return { length: n, more: true };
    n += c.buffered;
    c.bytes(c.buffered);
  }
  return { length: n, more: false };
}

/** Buffers what is left of the input (device state and vmdesc come last) to find the vmdesc. */
async function findVmdescAhead(c: Cursor, inputSize?: number): Promise<LocatedVmdesc | null> {
  const from = c.offset;
  const rest = await c.peekRest(MAX_BUFFERED_RECORD);
  if (!rest) return null;
  return locateVmdesc(rest, from, inputSize ?? from + rest.length).vmdesc;
}
