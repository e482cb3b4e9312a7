// Lenient walk of the main stream: the records of codec/records.ts turned into findings, and a map
// of every region read. The walk itself is the reader's; only the judgement is verify's.
import { MAPPED_RAM_HEADER_SIZE, RecordType } from '../format/constants.js';
import { FormatError, type FormatErrorKind } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import type { Configuration } from '../codec/configuration.js';
import { hasNoAreas, type RamBlockEntry } from '../codec/ram.js';
import { deviceVersionMismatch, readRecords, type MigrationRecord } from '../codec/records.js';
import { StreamState } from '../codec/state.js';
import { readVmdescAtEnd, type LocatedVmdesc, type VmdescAtEnd } from '../codec/vmdesc.js';
import { FileCursor } from '../io/cursor.js';
import type { PositionalSource } from '../io/source.js';
import { StreamPages } from '../reader/migration-file.js';
import type { StreamRamBlock } from '../reader/ram-block.js';
import type { Code } from './codes.js';
import type { Findings } from './findings.js';

/** One RAM block as declared in the MEM_SIZE record, with its mapped-ram header if any. */
export interface BlockLayout {
  entry: RamBlockEntry;
  /** The target page size (sizes the bitmap; a differing header page size is an E_PAGE_SIZE finding). */
  pageSize: number;
  /** Page records of a plain-stream block (null for mapped-ram). */
  stream: StreamRamBlock | null;
}

/** A byte range [start, end) of the file. */
export interface Span {
  start: number;
  end: number;
}

/** What the walk found: the stream's facts, its blocks, and the metadata regions it read. */
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

/** The finding for the defect that ended the walk. */
const CODE_OF: Record<FormatErrorKind, Code> = {
  magic: 'E_MAGIC',
  version: 'E_VERSION',
  truncated: 'E_TRUNCATED',
  'no-eof': 'E_NO_EOF',
  framing: 'E_FRAMING',
  footer: 'E_FOOTER',
  configuration: 'E_CONFIGURATION',
  device: 'E_DEVICE_MISMATCH',
  vmdesc: 'E_VMDESC_JSON',
  'mapped-ram': 'E_CONFIG_MAPPED_RAM',
  overlap: 'E_AREA_OVERLAP',
  'page-size': 'E_PAGE_SIZE',
};

/**
 * Walks the main stream at `streamOffset` leniently: every defect becomes a finding, the walk
 * goes as far as the bytes allow, and the RAM encoding is taken as found (a configuration that
 * contradicts the blocks is named, not believed).
 */
export async function walkStream(source: PositionalSource, streamOffset: number, findings: Findings): Promise<StreamMap> {
  const located = await readVmdescAtEnd(source, streamOffset, true);
  return new StreamWalk(source, streamOffset, findings, located).run();
}

/** One walk: the decoder's state, the map being built, and where the metadata span now starts. */
class StreamWalk {
  private readonly c: FileCursor;
  private readonly state: StreamState;
  private readonly map: StreamMap;
  private readonly pages: StreamPages;
  private spanStart: number;
  /** Where metadata resumes after a page area, once the walk got past it. */
  private resumeAt: number | null = null;
  private last: MigrationRecord['type'] | null = null;
  private sectionAt: number;
  private devices = 0;
  /** Bytes after the stream are not metadata (nor anything else the walk maps). */
  private streamEnd: number | null = null;
  private encodingNoted = false;

  constructor(
    private readonly source: PositionalSource,
    private readonly streamOffset: number,
    private readonly findings: Findings,
    private readonly located: VmdescAtEnd,
  ) {
    this.c = new FileCursor(source, streamOffset);
    this.state = new StreamState({ offset: streamOffset, vmdesc: located.vmdesc, encoding: 'as-found' });
    this.map = { streamOffset, isMigration: false, config: null, mappedRam: false, pageSize: this.state.pageSize, blocks: [], metadata: [], complete: false, vmdesc: located.vmdesc };
    this.pages = new StreamPages(source, this.state);
    this.spanStart = this.sectionAt = streamOffset;
  }

  async run(): Promise<StreamMap> {
    const { c, map, findings } = this;
    try {
      for await (const r of readRecords(c, { state: this.state, inputSize: this.source.size })) {
        this.noteEncoding();
        if (this.resumeAt !== null) [this.spanStart, this.resumeAt] = [this.resumeAt, null];
        if (this.last === 'header' && r.type !== 'configuration') this.missingConfiguration();
        await this.judge(r);
        this.last = r.type;
      }
      if (map.complete && this.last === 'eof') findings.add('W_NO_VMDESC', c.offset, 'no vmdesc after the EOF record');
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      this.failed(e);
    }
    // The cursor left the header end only if the jump over the page area succeeded.
    if (this.resumeAt !== null && c.offset !== this.spanStart) this.spanStart = this.resumeAt;
    this.closeSpan(Math.min(this.streamEnd ?? c.offset, this.source.size));
    map.mappedRam = this.state.mappedRam;
    return map;
  }

  /** The defect that ended the walk, as a finding. */
  private failed(e: FormatError): void {
    this.noteEncoding();
    if (e.kind !== 'magic') this.map.isMigration = true;
    if (this.last === 'header' && e.kind !== 'configuration') this.missingConfiguration();
    // A vmdesc that does not parse was reported when it was located.
    if (!(e.kind === 'vmdesc' && this.findings.has('E_VMDESC_JSON'))) {
      this.findings.add(CODE_OF[e.kind], e.offset, e.kind === 'magic' ? `${e.message}: not a QEMU migration file` : e.message);
    }
  }

  private closeSpan(end: number): void {
    if (end > this.spanStart) this.map.metadata.push({ start: this.spanStart, end });
  }

  private missingConfiguration(): void {
    this.findings.add('E_CONFIGURATION', this.streamOffset + 8, 'the configuration section (0x07) is missing after the file header');
  }

  /** The configuration contradicted by the blocks' bytes: named once, when decode found it. */
  private noteEncoding(): void {
    const m = this.state.encodingMismatch;
    if (!m || this.encodingNoted) return;
    this.encodingNoted = true;
    const why = m.configured
      ? `the configuration has the mapped-ram capability, but block ${name(m.idstr)} is followed by the next block entry, not a mapped-ram header`
      : `the configuration lacks the mapped-ram capability, but block ${name(m.idstr)} carries a mapped-ram header`;
    this.findings.add('E_CONFIG_MAPPED_RAM', m.headerOffset, why, m.idstr);
  }

  private async judge(r: MigrationRecord): Promise<void> {
    const { map, findings } = this;
    switch (r.type) {
      case 'header':
        map.isMigration = true;
        if (this.located.error) findings.add('E_VMDESC_JSON', this.located.error.offset, `vmdesc: ${this.located.error.message}`);
        break;
      case 'configuration':
        map.config = this.state.config;
        map.pageSize = this.state.pageSize;
        break;
      case 'section':
        this.sectionAt = r.offset;
        break;
      case 'ram-block':
        this.blockFound(r.entry);
        break;
      case 'ram-zero':
        if (r.fill !== 0) findings.add('E_FRAMING', r.offset, `zero page record with fill byte ${r.fill}`, r.block.idstr);
        this.pages.page(r);
        break;
      case 'ram-page':
        this.pages.page(r);
        break;
      case 'device-state':
        this.devices++;
        if (deviceVersionMismatch(r)) {
          findings.add('E_DEVICE_MISMATCH', this.sectionAt, `device section ${name(r.header.idstr)} has version ${r.header.version}, its vmdesc entry says ${r.device.version}`);
        }
        break;
      default:
        await this.judgeEnd(r);
    }
  }

  /** The records at and after the end of the stream, and a walk that stopped early. */
  private async judgeEnd(r: MigrationRecord): Promise<void> {
    const { map, findings } = this;
    switch (r.type) {
      case 'eof': {
        map.complete = true;
        const described = map.vmdesc?.desc.devices.length ?? 0;
        if (map.vmdesc && this.devices < described) findings.add('E_DEVICE_MISMATCH', r.offset, `the vmdesc describes ${described} devices, the stream holds ${this.devices}`);
        break;
      }
      case 'vmdesc': {
        const pageSize = r.vmdesc.desc.page_size;
        if (pageSize !== undefined && pageSize !== map.pageSize && !findings.has('E_VMDESC_JSON')) {
          findings.add('E_PAGE_SIZE', r.offset + 5, `the vmdesc page_size ${S(pageSize)} differs from the target page size ${map.pageSize}`);
        }
        break;
      }
      case 'trailing':
        this.streamEnd = r.offset;
        if (this.last === 'eof') {
          findings.add('W_TRAILING_DATA', r.offset, `${r.more ? 'more than ' : ''}${r.length} bytes after the EOF record that are not a vmdesc`);
          findings.add('W_NO_VMDESC', r.offset, 'no vmdesc after the EOF record');
        } else if (!findings.has('E_VMDESC_JSON')) findings.add('W_TRAILING_DATA', r.offset, `${r.more ? 'more than ' : ''}${r.length} bytes after the vmdesc`);
        break;
      case 'stop':
        if (r.kind === 'vmdesc-short') {
          findings.add('E_DEVICE_MISMATCH', r.offset, r.reason);
          break;
        }
        // Without a vmdesc the walk cannot reach the end; a complete stream still ends with a footer and EOF.
        if (!map.vmdesc) await this.checkEndsWithEof();
        if (r.kind === 'no-vmdesc' && !findings.has('E_VMDESC_JSON')) findings.add('W_NO_VMDESC', this.source.size, 'no vmdesc at the end of the file');
        findings.add('W_UNCHECKED', r.offset, `${r.reason}: it and everything after it are not checked`);
        break;
    }
  }

  private blockFound(entry: RamBlockEntry): void {
    const id = entry.idstr;
    const h = entry.mappedRam;
    const { map, findings } = this;
    map.blocks.push({ entry, pageSize: map.pageSize, stream: h ? null : this.pages.block(entry) });
    if (!h) return;
    if (h.version > 1) findings.add('E_HEADER_VERSION', h.headerOffset, `mapped-ram header version ${h.version} of block ${name(id)} (QEMU accepts 0 and 1)`, id);
    if (h.pageSize !== map.pageSize) findings.add('E_PAGE_SIZE', h.headerOffset + 4, `block ${name(id)} declares page size ${h.pageSize}, the target page size is ${map.pageSize}`, id);
    // Blocks x-ignore-shared left out (QEMU 11) have no areas and the stream goes on after the header.
    if (hasNoAreas(h)) {
      if (entry.mrAddr === null) findings.add('E_IGNORED_NO_CAPABILITY', h.headerOffset + 12, `block ${name(id)} has bitmap and pages offsets 0 (left out), but the configuration lacks x-ignore-shared`, id);
      return;
    }
    if (entry.mrAddr !== null && (h.bitmapOffset === 0 || h.pagesOffset === 0)) {
      const zero = h.bitmapOffset === 0 ? 'bitmap' : 'pages';
      findings.add('E_IGNORED_OFFSETS', h.headerOffset + (zero === 'bitmap' ? 12 : 20), `block ${name(id)} has a ${zero} offset of 0 but not the other: a block x-ignore-shared leaves out has both 0`, id);
    }
    this.closeSpan(h.headerOffset + MAPPED_RAM_HEADER_SIZE);
    this.spanStart = h.headerOffset + MAPPED_RAM_HEADER_SIZE;
    this.resumeAt = h.pagesOffset + entry.usedLength;
  }

  /** Without a vmdesc the walk cannot reach the end; a complete stream still ends with a footer and EOF. */
  private async checkEndsWithEof(): Promise<void> {
    const { source, streamOffset, findings } = this;
    const tail = new Uint8Array(6);
    if (source.size - streamOffset < 14 || (await source.readInto(tail, source.size - 6)) < 6) return;
    if (tail[0] !== RecordType.SectionFooter || tail[5] !== RecordType.Eof) {
      findings.add('E_NO_EOF', source.size, 'the file ends neither with a vmdesc nor with a section footer and the EOF record: it is truncated');
    }
  }
}
