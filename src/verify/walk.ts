// Lenient walk of the main stream: records findings instead of throwing, and maps every region it read.
import {
  CAPABILITY_MAPPED_RAM,
  CAPABILITY_X_IGNORE_SHARED,
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
import { FormatError, hex } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import { readConfiguration, targetPageSize, type Configuration } from '../codec/configuration.js';
import { readRamWord, rejectUnsupportedFlags, type RamBlockEntry } from '../codec/ram.js';
import { readCommand, readFullHeader, SECTION_KIND_OF, type SectionHeader } from '../codec/section.js';
import { parseVmdesc, payloadSize, type LocatedVmdesc } from '../codec/vmdesc.js';
import { FileCursor, MAX_BUFFERED_RECORD } from '../io/cursor.js';
import type { FileSource } from '../io/file-source.js';
import { StreamRamBlock } from '../reader/ram-block.js';
import type { Code } from './codes.js';
import type { Findings } from './findings.js';

/** One RAM block as declared in the MEM_SIZE record, with its mapped-ram header if any. */
export interface BlockLayout {
  entry: RamBlockEntry;
  /** Header page size when plausible, else the target page size (used to size the bitmap). */
  pageSize: number;
  /** Page records of a plain-stream block (null for mapped-ram). */
  stream: StreamRamBlock | null;
}

export interface Span {
  start: number;
  end: number;
}

export interface StreamMap {
  streamOffset: number;
  /** False when the file is not a QEMU migration stream at all: nothing else was checked. */
  isMigration: boolean;
  config: Configuration | null;
  /** Whether blocks carry mapped-ram headers (as found, not only as configured). */
  mappedRam: boolean;
  pageSize: number;
  blocks: BlockLayout[];
  /** Main-stream bytes the walk read (page areas are jumped over). */
  metadata: Span[];
  /** The EOF record was reached. */
  complete: boolean;
  vmdesc: LocatedVmdesc | null;
}

const S = JSON.stringify;
const name = (s: string) => `"${escapeControl(s)}"`;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const toNumber = (b: bigint) => (b > MAX_SAFE ? Number.POSITIVE_INFINITY : Number(b));

/** Thrown inside the walk to end it after a finding was recorded. */
class Stop extends Error {}

export async function walkStream(source: FileSource, streamOffset: number, findings: Findings): Promise<StreamMap> {
  const c = new FileCursor(source, streamOffset);
  const map: StreamMap = { streamOffset, isMigration: false, config: null, mappedRam: false, pageSize: targetPageSize(null), blocks: [], metadata: [], complete: false, vmdesc: null };
  let spanStart = streamOffset;
  // Like QEMU's last_recv_block: a CONTINUE page record may refer to a block named in an earlier section.
  let current: BlockLayout | null = null;
  const closeSpan = (end: number) => {
    if (end > spanStart) map.metadata.push({ start: spanStart, end });
  };
  function stop(code: Code, offset: number, message: string, block?: string): never {
    findings.add(code, offset, message, block);
    throw new Stop();
  }
  try {
    if (source.size - streamOffset < 8) stop('E_MAGIC', streamOffset, `the file ends ${source.size - streamOffset} bytes after the stream offset: not a QEMU migration file`);
    await c.need(8, 'QEMU migration file header');
    const magic = c.u32();
    if (magic !== QEMU_VM_FILE_MAGIC) stop('E_MAGIC', streamOffset, `expected the magic "QEVM" (0x5145564d), found ${hex(magic)}: not a QEMU migration file`);
    map.isMigration = true;
    const version = c.u32();
    if (version !== QEMU_VM_FILE_VERSION) {
      stop('E_VERSION', streamOffset + 4, version === QEMU_VM_FILE_VERSION_COMPAT ? 'stream version 2 is obsolete' : `unsupported stream version ${version} (expected 3)`);
    }
    map.vmdesc = await findVmdesc(source, streamOffset, findings);
    await walkRecords();
  } catch (e) {
    if (e instanceof Stop) {
      /* finding already recorded */
    } else if (e instanceof FormatError) {
      findings.add(e.found === 'end of file' || e.found === 'end of input' ? 'E_TRUNCATED' : 'E_FRAMING', e.offset, e.message);
    } else throw e;
  }
  closeSpan(Math.min(c.offset, source.size));
  return map;

  async function walkRecords(): Promise<void> {
    const sections = new Map<number, SectionHeader>();
    // Blocks are declared in the START section; PART/END page records refer to them by name.
    const blocks = new Map<string, BlockLayout>();
    let deviceIndex = 0;
    let ignoreShared = false;
    if ((await c.atEnd()) || c.peekU8() !== RecordType.Configuration) {
      findings.add('E_CONFIGURATION', c.offset, 'the configuration section (0x07) is missing after the file header');
    }
    for (;;) {
      const at = c.offset;
      if (await c.atEnd()) stop('E_NO_EOF', at, 'the stream ends without the EOF record (0x00)');
      const type = c.u8();
      if (type === RecordType.Configuration) {
        if (at !== streamOffset + 8) stop('E_FRAMING', at, 'a configuration section (0x07) other than right after the file header');
        try {
          map.config = await readConfiguration(c);
        } catch (e) {
          if (e instanceof FormatError) stop('E_CONFIGURATION', e.offset, e.message);
          throw e;
        }
        map.pageSize = targetPageSize(map.config);
        map.mappedRam = map.config.capabilities?.includes(CAPABILITY_MAPPED_RAM) ?? false;
        ignoreShared = map.config.capabilities?.includes(CAPABILITY_X_IGNORE_SHARED) ?? false;
        continue;
      }
      if (type === RecordType.Command) {
        await readCommand(c);
        continue;
      }
      if (type === RecordType.Eof) {
        map.complete = true;
        const described = map.vmdesc?.desc.devices.length ?? 0;
        if (map.vmdesc && deviceIndex < described) {
          findings.add('E_DEVICE_MISMATCH', at, `the vmdesc describes ${described} devices, the stream holds ${deviceIndex}`);
        }
        await walkTail();
        return;
      }
      const kind = SECTION_KIND_OF[type];
      if (!kind) stop('E_FRAMING', at, `unknown record type ${hex(type)}`);
      let header: SectionHeader;
      if (kind === 'start' || kind === 'full') {
        header = await readFullHeader(c, kind);
        if (kind === 'start') sections.set(header.sectionId, header);
      } else {
        const id = await c.readU32('section id');
        const started = sections.get(id);
        if (!started) stop('E_FRAMING', at + 1, `${kind} section for id ${id}, which no START section opened`);
        header = { ...started!, kind };
      }
      if (header.idstr === RAM_SECTION_IDSTR && header.instanceId === 0) {
        if (header.version !== RAM_SECTION_VERSION) stop('E_FRAMING', at, `RAM section version ${header.version} (QEMU accepts only ${RAM_SECTION_VERSION})`);
        await walkRam(ignoreShared, blocks);
      } else if (kind === 'full') {
        const device = map.vmdesc?.desc.devices[deviceIndex];
        if (!map.vmdesc) {
          await checkEndsWithEof();
          if (!findings.has('E_VMDESC_JSON')) findings.add('W_NO_VMDESC', source.size, 'no vmdesc at the end of the file');
        }
        if (!map.vmdesc) stop('W_UNCHECKED', at, `device section ${name(header.idstr)} and everything after it not checked: no vmdesc to size it`);
        if (!device) stop('E_DEVICE_MISMATCH', at, `device section ${name(header.idstr)} is number ${deviceIndex + 1}, the vmdesc describes only ${map.vmdesc!.desc.devices.length}`);
        if (device!.name !== header.idstr || (device!.instance_id ?? 0) !== header.instanceId) {
          stop('E_DEVICE_MISMATCH', at, `device section ${name(header.idstr)} instance ${header.instanceId}, the vmdesc entry ${deviceIndex} is ${name(String(device!.name))} instance ${device!.instance_id ?? 0}`);
        }
        if (device!.version !== undefined && device!.version !== header.version) {
          findings.add('E_DEVICE_MISMATCH', at, `device section ${name(header.idstr)} has version ${header.version}, its vmdesc entry says ${device!.version}`);
        }
        await c.skip(payloadSize(device!, map.vmdesc!.offset), `payload of device ${name(header.idstr)}`);
        deviceIndex++;
      } else {
        if (!map.vmdesc) await checkEndsWithEof();
        stop('W_UNCHECKED', at, `${kind} section of iterative device ${name(header.idstr)} and everything after it not checked (only "ram" is understood)`);
      }
      const footerAt = c.offset;
      await c.need(5, 'section footer');
      const marker = c.u8();
      const id = c.u32();
      if (marker !== RecordType.SectionFooter) stop('E_FOOTER', footerAt, `section footer 0x7e of ${name(header.idstr)} expected, found ${hex(marker)}`);
      if (id !== header.sectionId) stop('E_FOOTER', footerAt + 1, `footer of ${name(header.idstr)} names section ${id}, expected ${header.sectionId}`);
    }
  }

  async function walkRam(ignoreShared: boolean, byId: Map<string, BlockLayout>): Promise<void> {
    for (;;) {
      const w = await readRamWord(c, map.pageSize);
      rejectUnsupportedFlags(w);
      const flags = w.flags & ~RamFlag.CONTINUE;
      if (flags === RamFlag.EOS) return;
      if (flags === RamFlag.MEM_SIZE) {
        let left = w.addr;
        while (left > 0) {
          const b = await walkBlockEntry(ignoreShared, byId);
          if (b.entry.usedLength > left) stop('E_FRAMING', b.entry.entryOffset, `block ${name(b.entry.idstr)} is longer (${b.entry.usedLength}) than the rest of the MEM_SIZE total (${left})`);
          left -= b.entry.usedLength;
        }
        continue;
      }
      if (flags === RamFlag.MULTIFD_FLUSH) {
        if (map.mappedRam) stop('E_FRAMING', w.at, 'a MULTIFD_FLUSH record in a mapped-ram file');
        continue;
      }
      if (flags !== RamFlag.PAGE && flags !== RamFlag.ZERO) stop('E_FRAMING', w.at, `unknown combination of RAM record flags ${hex(w.flags)}`);
      if (map.mappedRam) stop('E_CONFIG_MAPPED_RAM', w.at, 'a page record in the main stream although the file is mapped-ram');
      if (!(w.flags & RamFlag.CONTINUE)) {
        const nameAt = c.offset;
        const id = await c.readCountedString('RAM block name');
        current = byId.get(id) ?? null;
        if (!current) stop('E_FRAMING', nameAt, `page record for RAM block ${name(id)}, which the MEM_SIZE record did not declare`);
      } else if (!current) stop('E_FRAMING', w.at, 'a CONTINUE page record before any block name');
      const b = current!;
      if (w.addr + map.pageSize > b.entry.usedLength) stop('E_FRAMING', w.at, `page address ${hex(w.addr)} outside block ${name(b.entry.idstr)} (${b.entry.usedLength} bytes)`, b.entry.idstr);
      const page = w.addr / map.pageSize;
      if (flags === RamFlag.ZERO) {
        const fillAt = c.offset;
        const fill = await c.readU8('zero page fill byte');
        if (fill !== 0) stop('E_FRAMING', fillAt, `zero page record with fill byte ${fill}`, b.entry.idstr);
        b.stream!.record(page, null);
      } else {
        const dataAt = c.offset;
        await c.skip(map.pageSize, 'page data');
        b.stream!.record(page, dataAt);
      }
    }
  }

  async function walkBlockEntry(ignoreShared: boolean, byId: Map<string, BlockLayout>): Promise<BlockLayout> {
    const entryOffset = c.offset;
    const n = await c.readU8('RAM block name length');
    if (n === 0) stop('E_FRAMING', entryOffset, 'RAM block name of length 0');
    await c.need(n, 'RAM block name');
    const id = c.string(n);
    if (byId.has(id)) stop('E_FRAMING', entryOffset, `RAM block ${name(id)} declared twice`, id);
    const usedLength = await c.readU64('RAM block used length');
    if (usedLength % map.pageSize !== 0) stop('E_FRAMING', entryOffset + 1 + n, `used length ${usedLength} of block ${name(id)} is not a multiple of the page size ${map.pageSize}`, id);
    const mrAddr = ignoreShared ? await c.readU64('RAM block guest address') : null;
    const entry: RamBlockEntry = { idstr: id, usedLength, entryOffset, mrAddr, mappedRam: null };
    const headerOffset = c.offset;
    const raw = source.size - headerOffset >= MAPPED_RAM_HEADER_SIZE ? await c.readBytes(MAPPED_RAM_HEADER_SIZE, 'mapped-ram header').then((b) => b.slice()) : null;
    if (raw) await c.seek(headerOffset, 'mapped-ram header');
    const looksMapped = raw !== null && be32(raw, 0) <= 1 && toNumber(be64big(raw, 4)) === map.pageSize && toNumber(be64big(raw, 12)) === headerOffset + MAPPED_RAM_HEADER_SIZE;
    if (!map.mappedRam && looksMapped && map.blocks.length === 0) {
      findings.add('E_CONFIG_MAPPED_RAM', headerOffset, `the configuration lacks the mapped-ram capability, but block ${name(id)} carries a mapped-ram header`, id);
      map.mappedRam = true;
    } else if (map.mappedRam && !looksMapped && map.blocks.length === 0 && raw !== null && looksLikeStreamEntry(raw)) {
      findings.add('E_CONFIG_MAPPED_RAM', headerOffset, `the configuration has the mapped-ram capability, but block ${name(id)} is followed by the next block entry, not a mapped-ram header`, id);
      map.mappedRam = false;
    }
    const layout: BlockLayout = { entry, pageSize: map.pageSize, stream: null };
    byId.set(id, layout);
    map.blocks.push(layout);
    if (!map.mappedRam) {
      layout.stream = new StreamRamBlock(source, entry, map.pageSize);
      return layout;
    }
    if (!raw) stop('E_TRUNCATED', headerOffset, `the file ends inside the mapped-ram header of block ${name(id)}`, id);
    await c.skip(MAPPED_RAM_HEADER_SIZE, 'mapped-ram header');
    const version = be32(raw!, 0);
    const pageSizeBig = be64big(raw!, 4);
    const bitmapOffset = toNumber(be64big(raw!, 12));
    const pagesOffset = toNumber(be64big(raw!, 20));
    if (version > 1) findings.add('E_HEADER_VERSION', headerOffset, `mapped-ram header version ${version} of block ${name(id)} (QEMU accepts 0 and 1)`, id);
    const pageSize = toNumber(pageSizeBig);
    if (pageSize !== map.pageSize) {
      findings.add('E_PAGE_SIZE', headerOffset + 4, `block ${name(id)} declares page size ${pageSizeBig}, the target page size is ${map.pageSize}`, id);
    }
    entry.mappedRam = { version, pageSize: map.pageSize, bitmapOffset, pagesOffset, headerOffset };
    // Ignored shared blocks (x-ignore-shared, QEMU > 10.2) have no areas and the stream goes on.
    if (ignoreShared && bitmapOffset === 0 && pagesOffset === 0) return layout;
    const headerEnd = headerOffset + MAPPED_RAM_HEADER_SIZE;
    const next = pagesOffset + usedLength;
    // The walk must move forward: a page area behind its own header would make it loop.
    if (pagesOffset < headerEnd) stop('E_AREA_OVERLAP', headerOffset + 20, `page area of block ${name(id)} at ${hex(pagesOffset)} starts before the end of its own header (${hex(headerEnd)})`, id);
    if (!Number.isSafeInteger(next) || next > source.size) {
      stop('E_TRUNCATED', Math.min(source.size, pagesOffset), `the stream continues after the page area of block ${name(id)} at ${Number.isFinite(next) ? hex(next) : 'an offset beyond 2^53'}, but the file ends at ${hex(source.size)}`, id);
    }
    closeSpan(headerEnd);
    await c.seek(next, `end of the page area of block ${name(id)}`);
    spanStart = next;
    return layout;
  }

  /** Without a vmdesc the walk cannot reach the end; a complete stream still ends with a footer and EOF. */
  async function checkEndsWithEof(): Promise<void> {
    const tail = new Uint8Array(6);
    if (source.size - streamOffset < 14 || (await source.readInto(tail, source.size - 6)) < 6) return;
    if (tail[0] !== RecordType.SectionFooter || tail[5] !== RecordType.Eof) {
      findings.add('E_NO_EOF', source.size, 'the file ends neither with a vmdesc nor with a section footer and the EOF record: it is truncated');
    }
  }

  async function walkTail(): Promise<void> {
    if (await c.atEnd()) {
      findings.add('W_NO_VMDESC', c.offset, 'no vmdesc after the EOF record');
      return;
    }
    const at = c.offset;
    const type = c.u8();
    if (type !== RecordType.VmDescription) {
      findings.add('W_TRAILING_DATA', at, `${source.size - at} bytes after the EOF record that are not a vmdesc (type ${hex(type)})`);
      findings.add('W_NO_VMDESC', at, 'no vmdesc after the EOF record');
      return;
    }
    if (source.size - at < 5) stop('E_VMDESC_JSON', at, 'the file ends inside the vmdesc length');
    const len = await c.readU32('vmdesc length');
    if (len > source.size - at - 5) stop('E_VMDESC_JSON', at + 1, `vmdesc length ${len} runs past the end of the file (${source.size - at - 5} bytes left)`);
    if (len > MAX_BUFFERED_RECORD) stop('E_VMDESC_JSON', at + 1, `vmdesc length ${len} is larger than ${MAX_BUFFERED_RECORD} bytes`);
    const json = new TextDecoder().decode(await c.readBytes(len, 'vmdesc JSON'));
    if (findings.has('E_VMDESC_JSON')) return;
    let desc;
    try {
      desc = parseVmdesc(json, at + 5);
    } catch (e) {
      if (e instanceof FormatError) stop('E_VMDESC_JSON', at + 5, `vmdesc: ${e.message}`);
      throw e;
    }
    if (desc!.page_size !== undefined && desc!.page_size !== map.pageSize) {
      findings.add('E_PAGE_SIZE', at + 5, `the vmdesc page_size ${S(desc!.page_size)} differs from the target page size ${map.pageSize}`);
    }
    if (at + 5 + len < source.size) findings.add('W_TRAILING_DATA', at + 5 + len, `${source.size - at - 5 - len} bytes after the vmdesc`);
  }
}

/** Plain-stream bytes after a used length: the next entry (u8 length + printable idstr + be64) or the EOS word. */
function looksLikeStreamEntry(b: Uint8Array): boolean {
  if (be32(b, 0) === 0 && be32(b, 4) === RamFlag.EOS) return true;
  const n = b[0]!;
  if (n === 0 || n + 1 > b.length) return false;
  for (let i = 1; i <= n; i++) if (b[i]! < 0x20 || b[i]! > 0x7e) return false;
  return true;
}

const TAIL_WINDOWS = [1 << 20, MAX_BUFFERED_RECORD];

/**
 * The vmdesc located from the end of the file: 0x00, 0x06, be32 length reaching exactly EOF, JSON.
 * A record that has that shape but does not parse is reported here (device sections need it).
 */
async function findVmdesc(source: FileSource, streamOffset: number, findings: Findings): Promise<LocatedVmdesc | null> {
  const last = new Uint8Array(1);
  if (source.size - streamOffset < 7 || (await source.readInto(last, source.size - 1)) !== 1) return null;
  // The JSON object ends the file: without a final '}' a vmdesc larger than the first window is not looked for.
  for (const window of last[0] === 0x7d ? TAIL_WINDOWS : TAIL_WINDOWS.slice(0, 1)) {
    const len = Math.min(window, source.size - streamOffset);
    const tail = new Uint8Array(len);
    await source.readInto(tail, source.size - len);
    const base = source.size - len;
    for (let i = tail.lastIndexOf(RecordType.VmDescription, len - 6); i >= 1; i = tail.lastIndexOf(RecordType.VmDescription, i - 1)) {
      if (tail[i - 1] !== 0 || tail[i + 5] !== 0x7b) continue;
      if (be32(tail, i + 1) !== source.size - (base + i + 5)) continue;
      const json = new TextDecoder().decode(tail.subarray(i + 5));
      try {
        return { offset: base + i, json, desc: parseVmdesc(json, base + i + 5) };
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        findings.add('E_VMDESC_JSON', base + i + 5, `vmdesc: ${e.message}`);
        return null;
      }
    }
    if (len < window) return null;
  }
  return null;
}
