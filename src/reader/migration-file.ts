// Opens a migration file and builds its map: wrapper, configuration, sections, RAM blocks, devices.
import { MAPPED_RAM_HDR_VERSION } from '../format/constants.js';
import { FormatError, hex, UsageError } from '../format/errors.js';
import type { LibvirtHeader } from '../codec/libvirt.js';
import type { Configuration } from '../codec/configuration.js';
import { hasNoAreas, type RamBlockEntry } from '../codec/ram.js';
import { deviceVersionMismatch, readRecords, type MigrationRecord } from '../codec/records.js';
import { StreamState } from '../codec/state.js';
import { readVmdescAtEnd, type LocatedVmdesc } from '../codec/vmdesc.js';
import { FileCursor } from '../io/cursor.js';
import type { PositionalSource } from '../io/source.js';
import { explainMissingMagic } from './find-stream.js';
import { openInput, readLibvirtHeader } from './input.js';
import { MappedRamBlock, PageTableBudget, StreamRamBlock, type RamBlock } from './ram-block.js';

/** The kind of a top-level record in a file's map. */
export type SectionType = 'header' | 'configuration' | 'start' | 'part' | 'end' | 'full' | 'command' | 'eof' | 'vmdesc' | 'trailing';

/** One record of the file's top level, with the bytes it spans. */
export interface SectionInfo {
  type: SectionType;
  /** Section id for start/part/end/full; the command code for commands; else null. */
  sectionId: number | null;
  /** Device idstr, or the command name; else null. */
  idstr: string | null;
  instanceId: number | null;
  version: number | null;
  offset: number;
  length: number;
}

/** A FULL device section: where it and its payload lie. */
export interface DeviceInfo {
  idstr: string;
  instanceId: number;
  version: number;
  /** The FULL section: header, payload and footer. */
  offset: number;
  length: number;
  payloadOffset: number;
  payloadLength: number;
}

/** Options of `MigrationFile.open`. */
export interface OpenOptions {
  /** Where the QEMU stream starts (like `file:PATH,offset=N`); default: after a libvirt header if any, else 0. */
  offset?: number;
  /** The file is a qcow2 image: read the VM state of this internal snapshot (name or id). */
  snapshot?: string;
  /**
   * The option that sets `offset`, named by the error when no stream starts at 0 but one starts
   * further on ("a QEMU stream starts at offset N: use --offset N"); default "--offset".
   */
  offsetFlag?: string;
}

/**
 * A migration file, walked once on open: its records' map (sections, devices), its RAM blocks
 * ready for random access, and what QEMU's loader would refuse.
 */
export class MigrationFile {
  /** The RAM blocks, in stream order. */
  readonly blocks: RamBlock[] = [];
  /** The top-level records with the bytes they span. */
  readonly sections: SectionInfo[] = [];
  /** The FULL device sections. */
  readonly devices: DeviceInfo[] = [];
  /** Sections QEMU's loader refuses although the file maps to its end (a device section's version). */
  readonly refusals: FormatError[] = [];
  /** Why parsing ended early or what it skipped (e.g. no vmdesc to size device sections). */
  readonly notes: string[] = [];
  /** The vmdesc (device descriptions), null when the file has none. */
  vmdesc: LocatedVmdesc | null = null;
  /** The decoder's state after the walk: configuration, page size, encoding, declared blocks. */
  private state = new StreamState();

  private constructor(
    readonly source: PositionalSource,
    readonly streamOffset: number,
    readonly libvirt: LibvirtHeader | null,
  ) {}

  /** The configuration record (null when the file has none). */
  get configuration(): Configuration | null {
    return this.state.config;
  }
  /** The stream version from the file header (3). */
  get version(): number {
    return this.state.version;
  }
  /** The input's path ("fd N" for a descriptor). */
  get path(): string {
    return this.source.path;
  }
  /** The input's size in bytes. */
  get size(): number {
    return this.source.size;
  }
  /** Bytes the input occupies on disk (holes excluded). */
  get allocated(): number {
    return this.source.allocated;
  }
  /** The RAM encoding the configuration names. */
  get format(): 'mapped-ram' | 'stream' {
    return this.state.mappedRam ? 'mapped-ram' : 'stream';
  }
  /** Target page size, from the configuration (what QEMU's loader enforces; the vmdesc only repeats it). */
  get pageSize(): number {
    return this.state.pageSize;
  }
  /** True when the walk reached the EOF record. */
  get complete(): boolean {
    return this.sections.some((s) => s.type === 'eof');
  }

  /**
   * Throws unless QEMU's loader would load the file as mram reads it: mapped to its EOF record and
   * no section it refuses. What extracts or converts RAM calls this first.
   */
  requireLoadable(): void {
    if (!this.complete) throw new FormatError(this.size, `a complete migration ending in an EOF record (QEMU refuses the file): ${this.notes[0] ?? 'no EOF record'}`, 'end of file', 'no-eof');
    if (this.refusals.length) throw this.refusals[0];
  }

  /** The block named `id` (a UsageError naming a few of the others when there is none). */
  block(id: string): RamBlock {
    const b = this.blocks.find((x) => x.id === id);
    if (!b) throw new UsageError(`no RAM block ${JSON.stringify(id)} (${blockList(this.blocks.map((x) => x.id))})`);
    return b;
  }

  /**
   * Opens a path (a compressed libvirt save through its decompressor), or an open descriptor (left
   * open on close). With `snapshot`, the path is a qcow2 image and the file read is that internal
   * snapshot's VM state (see openSnapshotSource).
   */
  static async open(file: string | number, opts: OpenOptions = {}): Promise<MigrationFile> {
    const source = await openInput(file, opts.snapshot);
    let libvirt: LibvirtHeader | null = null;
    try {
      libvirt = await readLibvirtHeader(source);
      const offset = opts.offset ?? libvirt?.dataOffset ?? 0;
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > source.size) {
        throw new UsageError(`offset ${opts.offset} is outside the file (${source.size} bytes)`);
      }
      const file = new MigrationFile(source, offset, libvirt);
      await file.walk();
      return file;
    } catch (e) {
      // No magic at 0 and no libvirt header: say where a stream starts, if one does (file:PATH,offset=N).
      const err = opts.offset === undefined && !libvirt ? await explainMissingMagic(e, source, opts.offsetFlag) : e;
      await source.close();
      throw err;
    }
  }

  /**
   * Iterates the file's records afresh (e.g. for a converter); page data is not read unless asked
   * for. `state`: decode with this one (a new StreamState at the stream's offset), to read its facts.
   */
  records(opts: { pageData?: boolean; deviceData?: boolean; state?: StreamState } = {}): AsyncGenerator<MigrationRecord, void, undefined> {
    const state = opts.state ?? new StreamState({ offset: this.streamOffset });
    state.vmdesc = this.vmdesc ?? undefined;
    return readRecords(new FileCursor(this.source, this.streamOffset), { ...opts, state, inputSize: this.size });
  }

  /** Closes the input (a descriptor passed to `open` stays open). */
  close(): Promise<void> {
    return this.source.close();
  }

  private async walk(): Promise<void> {
    // A vmdesc beyond the last MiB is found when the walk reaches it.
    this.vmdesc = (await readVmdescAtEnd(this.source, this.streamOffset)).vmdesc;
    this.state = new StreamState({ offset: this.streamOffset, vmdesc: this.vmdesc ?? undefined });
    const walk: Walk = { pages: new StreamPages(this.source, this.state), open: null, device: null };
    for await (const r of readRecords(new FileCursor(this.source, this.streamOffset), { state: this.state, inputSize: this.size })) await this.note(r, walk);
    if (!this.vmdesc) this.notes.push('no vmdesc (device descriptions) at the end of the file');
  }

  /** Takes one record of the walk into the map. */
  private async note(r: MigrationRecord, walk: Walk): Promise<void> {
    const { pages } = walk;
    const push = (type: SectionType, offset: number, length: number, named: Partial<SectionInfo> = {}) =>
      this.sections.push({ type, sectionId: null, idstr: null, instanceId: null, version: null, offset, length, ...named });
    switch (r.type) {
      case 'header':
        push('header', r.offset, 8);
        break;
      case 'configuration':
        push('configuration', r.offset, r.length);
        break;
      case 'command':
        push('command', r.offset, 5 + r.command.data.length, { sectionId: r.command.cmd, idstr: r.command.name });
        break;
      case 'section': {
        const h = r.header;
        walk.open = { type: h.kind, sectionId: h.sectionId, idstr: h.idstr, instanceId: h.instanceId, version: h.version, offset: r.offset, length: 0 };
        break;
      }
      case 'ram-block':
        if (r.entry.mappedRam) checkMappedRamHeader(r.entry, this.state.pageSize);
        this.blocks.push(r.entry.mappedRam ? await MappedRamBlock.load(this.source, r.entry) : pages.block(r.entry));
        break;
      case 'ram-zero':
        if (r.fill !== 0) throw new FormatError(r.offset, 'a zero page record with fill byte 0', String(r.fill));
        pages.page(r);
        break;
      case 'ram-page':
        pages.page(r);
        break;
      case 'device-state': {
        const refused = deviceVersionMismatch(r);
        if (refused) this.refusals.push(refused);
        walk.device = { idstr: r.header.idstr, instanceId: r.header.instanceId, version: r.header.version, offset: walk.open!.offset, payloadOffset: r.offset, payloadLength: r.length };
        break;
      }
      case 'section-footer':
        walk.open!.length = r.offset + 5 - walk.open!.offset;
        this.sections.push(walk.open!);
        if (walk.device) this.devices.push({ ...walk.device, length: walk.open!.length });
        walk.open = null;
        walk.device = null;
        break;
      case 'eof':
        push('eof', r.offset, 1);
        break;
      case 'vmdesc':
        this.vmdesc ??= r.vmdesc;
        push('vmdesc', r.offset, r.length);
        break;
      case 'trailing':
        push('trailing', r.offset, r.length);
        this.notes.push(`${r.length} bytes after the end of the migration stream at offset ${r.offset}`);
        break;
      case 'stop':
        this.notes.push(`parsing stopped at offset ${r.offset}: ${r.reason}`);
        break;
    }
  }
}

/** What the walk carries from record to record: the open section, its device, the stream blocks. */
interface Walk {
  pages: StreamPages;
  open: SectionInfo | null;
  device: Omit<DeviceInfo, 'length'> | null;
}

/**
 * The plain-stream blocks of a walk: each PAGE or ZERO record notes where its page's data sits
 * (the last record of a page wins, as when QEMU loads). Shared by the reader and verify.
 */
export class StreamPages {
  private readonly byName = new Map<string, StreamRamBlock>();
  private readonly budget: PageTableBudget;

  constructor(
    private readonly source: PositionalSource,
    private readonly state: StreamState,
  ) {
    this.budget = new PageTableBudget(source.size);
  }

  /** The block of a plain-stream entry, its pages to be noted as their records come. */
  block(entry: RamBlockEntry): StreamRamBlock {
    const b = new StreamRamBlock(this.source, entry, this.state.pageSize, this.budget);
    this.byName.set(b.id, b);
    return b;
  }

  /** Notes a page record (its block was declared: decode checked it). */
  page(r: Extract<MigrationRecord, { type: 'ram-page' | 'ram-zero' }>): void {
    this.byName.get(r.block.idstr)!.record(r.pageIndex, r.type === 'ram-page' ? r.dataOffset : null);
  }
}

/** "blocks: a, b, c, d, e and 1995 more": a few names, never thousands. */
function blockList(ids: string[], shown = 5): string {
  if (ids.length === 0) return 'the file has no RAM blocks';
  const more = ids.length > shown ? ` and ${ids.length - shown} more` : '';
  return `blocks: ${ids.slice(0, shown).map((x) => JSON.stringify(x)).join(', ')}${more}`;
}

/**
 * The walk hands on any header version, page size and alignment; QEMU refuses these, and so does
 * the reader. A header page size other than the target page size (E_PAGE_SIZE) makes QEMU read
 * another number of bitmap bits than the block has pages, so it loads other contents: refused.
 */
function checkMappedRamHeader(entry: RamBlockEntry, tps: number): void {
  const h = entry.mappedRam!;
  if (hasNoAreas(h) && entry.mrAddr === null) {
    throw new FormatError(h.headerOffset + 12, `a bitmap and a page area for block ${JSON.stringify(entry.idstr)} (offsets 0/0 leave a block out only under x-ignore-shared, which the configuration does not list)`, 'bitmap offset 0 and pages offset 0');
  }
  if (h.version > MAPPED_RAM_HDR_VERSION) throw new FormatError(h.headerOffset, `mapped-ram header version ${MAPPED_RAM_HDR_VERSION}`, String(h.version));
  if (h.pageSize !== tps) throw new FormatError(h.headerOffset + 4, `mapped-ram header page size ${tps}, the target page size (E_PAGE_SIZE)`, String(h.pageSize), 'page-size');
  if (!Number.isSafeInteger(h.bitmapOffset)) throw new FormatError(h.headerOffset + 12, 'bitmap offset below 2^53', 'a larger value');
  if (h.pagesOffset % tps !== 0) throw new FormatError(h.headerOffset + 20, `pages offset aligned to the page size ${tps}`, hex(h.pagesOffset));
}
