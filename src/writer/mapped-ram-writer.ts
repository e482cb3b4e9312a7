// Writes a mapped-ram migration file: main stream through a buffered fd, pages through O_DIRECT,
// bitmaps last, then fdatasync and rename into place.
import { ByteWriter } from '../codec/byte-writer.js';
import { writeConfiguration, type Configuration } from '../codec/configuration.js';
import { writeMappedRamHeader, writeRamWord } from '../codec/ram.js';
import { writeCommand, writeFooter, writeSectionHeader, type Command, type SectionHeader } from '../codec/section.js';
import {
  CAPABILITY_MAPPED_RAM,
  MAPPED_RAM_HDR_VERSION,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  RAM_SECTION_IDSTR,
  RAM_SECTION_VERSION,
  RamFlag,
  RecordType,
} from '../format/constants.js';
import { UsageError } from '../format/errors.js';
import { MainStreamFile, PageAreaFile, type DirectIoMode } from '../io/direct-writer.js';
import { placeBlock, type BlockLayout, type RamBlockSpec } from './layout.js';
import { OutputFile } from './output-file.js';
import { PageStager, type StagerOptions } from './page-stager.js';
import { withCapability } from './configuration.js';

/** Options of MappedRamWriter.create. */
export interface MappedRamWriterOptions {
  /** Where the QEMU stream starts in the file (`file:PATH,offset=N`); bytes before it are a hole. */
  offset?: number;
  /** O_DIRECT for page areas: auto (fall back with a warning), on (fail if refused), off. */
  directIo?: DirectIoMode;
  /** Overwrite an existing target. */
  force?: boolean;
  /** Target page size; default 4096. */
  pageSize?: number;
  /** With `configuration` and `blocks`, the header, configuration and RAM START are written at once. */
  configuration?: Configuration;
  blocks?: RamBlockSpec[];
  /** Section id of "ram" (default 2, QEMU's usual value on x86). */
  ramSectionId?: number;
  /** Called with a one-line warning (e.g. O_DIRECT refused, falling back to buffered writes). */
  onWarning?: (message: string) => void;
  stager?: StagerOptions;
  /** Bytes in front of the stream (`offset` long, e.g. a libvirt header); see OutputPrefix. */
  prefix?: OutputPrefix;
}

/**
 * A header a tool keeps in front of the QEMU data (libvirt's save header): `bytes` are written
 * first (marked incomplete), `seal` at byte 0 only once everything else is durable.
 */
export interface OutputPrefix {
  bytes: Uint8Array;
  seal: Uint8Array;
}

/** What finish() wrote. */
export interface WriteSummary {
  path: string;
  /** Apparent size of the file. */
  size: number;
  /** Bytes of page data written (zero gaps included) and through which path. */
  pageBytes: number;
  presentPages: number;
  direct: boolean;
  blocks: BlockLayout[];
}

const DEFAULT_RAM_SECTION_ID = 2;

/**
 * Writes a mapped-ram migration file record by record, as QEMU's save does; pages go to their
 * slots in the page areas. Made by `create`; the file appears under its name at `finish`.
 */
export class MappedRamWriter {
  readonly pageSize: number;
  readonly layout: BlockLayout[] = [];
  private ramHeader: SectionHeader | null = null;
  private ramEnded = false;
  private eofWritten = false;
  private nextSectionId = 0;
  private closed = false;
  private readonly w = new ByteWriter();

  private constructor(
    readonly path: string,
    private readonly opts: MappedRamWriterOptions,
    private readonly out: OutputFile,
    private readonly main: MainStreamFile,
    private readonly pages: PageAreaFile,
    private readonly stager: PageStager,
  ) {
    this.pageSize = stager.pageSize;
  }

  /**
   * Creates the temporary file and writes the file header (and, with `configuration` and
   * `blocks`, the configuration and the RAM START section). A target that exists is refused
   * unless `force`.
   */
  static async create(path: string, opts: MappedRamWriterOptions = {}): Promise<MappedRamWriter> {
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new UsageError(`offset must be a non-negative integer, got ${offset}`);
    const out = await OutputFile.create(path, opts.force);
    const files: Array<MainStreamFile | PageAreaFile> = [];
    try {
      const main = await MainStreamFile.open(out.tempPath, offset, path);
      files.push(main);
      if (opts.prefix) {
        if (opts.prefix.bytes.length !== offset) throw new UsageError(`a ${opts.prefix.bytes.length}-byte header needs the stream at offset ${opts.prefix.bytes.length}, not ${offset}`);
        await main.pwrite(opts.prefix.bytes, 0);
      }
      const pages = await PageAreaFile.open(out.tempPath, opts.directIo ?? 'auto', opts.onWarning ?? (() => undefined), path);
      files.push(pages);
      const stager = new PageStager(pages, opts.pageSize ?? 4096, opts.stager);
      const writer = new MappedRamWriter(path, opts, out, main, pages, stager);
      await writer.begin().catch(async (e) => {
        await writer.abort();
        throw e;
      });
      return writer;
    } catch (e) {
      for (const f of files) await f.close().catch(() => undefined);
      await out.discard();
      throw e;
    }
  }

  /** File header, then the configuration and RAM START when the options give them. */
  private async begin(): Promise<void> {
    this.w.u32(QEMU_VM_FILE_MAGIC).u32(QEMU_VM_FILE_VERSION);
    await this.emit();
    const { configuration, blocks } = this.opts;
    if (configuration) await this.writeConfiguration(configuration);
    if (blocks) {
      const id = this.opts.ramSectionId ?? DEFAULT_RAM_SECTION_ID;
      await this.writeRamStart({ kind: 'start', sectionId: id, idstr: RAM_SECTION_IDSTR, instanceId: 0, version: RAM_SECTION_VERSION }, blocks);
    }
  }

  /** True when page writes bypass the page cache. */
  get direct(): boolean {
    return this.pages.direct;
  }

  /** Page bytes written so far (for progress). */
  get bytesWritten(): number {
    return this.stager.bytesWritten + this.main.bytesWritten;
  }

  /** The CONFIGURATION record; the mapped-ram capability is added if missing. */
  async writeConfiguration(config: Configuration): Promise<void> {
    writeConfiguration(this.w, withCapability(config, CAPABILITY_MAPPED_RAM, true));
    await this.emit();
  }

  /** A command record (QEMU_VM_COMMAND), e.g. what a postcopy save sends. */
  async writeCommand(cmd: Command): Promise<void> {
    writeCommand(this.w, cmd);
    await this.emit();
  }

  /**
   * The RAM START section: MEM_SIZE, each block entry with its MappedRamHeader (the page area is
   * skipped over), EOS and footer. Returns the layout.
   */
  async writeRamStart(header: SectionHeader, blocks: readonly RamBlockSpec[]): Promise<BlockLayout[]> {
    if (this.ramHeader) throw new UsageError('the RAM START section was already written');
    this.ramHeader = header;
    this.nextSectionId = Math.max(this.nextSectionId, header.sectionId + 1);
    writeSectionHeader(this.w, { ...header, kind: 'start' });
    writeRamWord(this.w, blocks.reduce((n, b) => n + b.usedLength, 0), RamFlag.MEM_SIZE);
    await this.emit();
    for (const b of blocks) {
      const l = placeBlock({ pageSize: this.pageSize, ...b }, this.main.position);
      if (l.pageSize !== this.pageSize) throw new UsageError(`block ${b.id}: page size ${l.pageSize} differs from the file's ${this.pageSize}`);
      this.w.countedString(l.id).u64(l.usedLength);
      if (l.mrAddr !== null) this.w.u64(l.mrAddr);
      writeMappedRamHeader(this.w, { version: MAPPED_RAM_HDR_VERSION, pageSize: l.pageSize, bitmapOffset: l.bitmapOffset, pagesOffset: l.pagesOffset });
      await this.emit();
      await this.main.seek(l.end);
      this.layout.push(l);
      // An ignored block has no page area: a page written to it is refused as an unknown block.
      if (!l.ignored) this.stager.addBlock(l);
    }
    // The page areas lie inside the file from the start (holes until written), as after QEMU's save.
    await this.main.reserve(this.main.position);
    writeRamWord(this.w, 0, RamFlag.EOS);
    writeFooter(this.w, header.sectionId);
    await this.emit();
    return this.layout;
  }

  /** Whole pages of a block starting at `firstPage`; all-zero pages are left as holes with their bit clear. */
  async writePages(blockId: string, firstPage: number, data: Uint8Array): Promise<void> {
    await this.stager.put(blockId, firstPage, data);
  }

  /** One page; synchronous (undefined) in the common case, else a promise to await before the next call. */
  writePage(blockId: string, page: number, data: Uint8Array): Promise<void> | undefined {
    return this.stager.putPage(blockId, page, data);
  }

  /** Marks a page as zero (bit cleared; a later writePages of it sets it again); await a returned promise. */
  zeroPage(blockId: string, page: number): Promise<void> | undefined {
    return this.stager.zero(blockId, page);
  }

  /** A RAM PART or END section: only EOS, since the pages live in the page areas. */
  async writeRamEos(kind: 'part' | 'end'): Promise<void> {
    const h = this.ramHeader;
    if (!h) throw new UsageError(`RAM ${kind.toUpperCase()} section before the RAM START section`);
    if (this.ramEnded) throw new UsageError('the RAM END section was already written');
    writeSectionHeader(this.w, { ...h, kind });
    writeRamWord(this.w, 0, RamFlag.EOS);
    writeFooter(this.w, h.sectionId);
    await this.emit();
    if (kind === 'end') this.ramEnded = true;
  }

  /**
   * A FULL device section (header, vmstate payload, footer); `sectionId` defaults to the next free one.
   * Ends the RAM section first if the writer started it itself (devices follow RAM END in QEMU).
   */
  async writeDevice(device: { idstr: string; instanceId?: number; version: number; sectionId?: number }, payload: Uint8Array): Promise<void> {
    if (this.opts.blocks && this.ramHeader && !this.ramEnded) await this.writeRamEos('end');
    const sectionId = device.sectionId ?? this.nextSectionId;
    this.nextSectionId = Math.max(this.nextSectionId, sectionId + 1);
    writeSectionHeader(this.w, { kind: 'full', sectionId, idstr: device.idstr, instanceId: device.instanceId ?? 0, version: device.version });
    this.w.bytes(payload);
    writeFooter(this.w, sectionId);
    await this.emit();
  }

  /** Bytes copied verbatim into the main stream (any record the writer has no method for). */
  async writeRaw(bytes: Uint8Array): Promise<void> {
    await this.main.write(bytes);
  }

  /** The EOF record (finish writes it if nobody did). */
  async writeEof(): Promise<void> {
    if (this.opts.blocks && this.ramHeader && !this.ramEnded) await this.writeRamEos('end');
    this.w.u8(RecordType.Eof);
    await this.emit();
    this.eofWritten = true;
  }

  /** The VMDESCRIPTION record after EOF: the JSON QEMU uses to describe device sections. */
  async writeVmdesc(json: string): Promise<void> {
    if (!this.eofWritten) await this.writeEof();
    const bytes = new TextEncoder().encode(json);
    this.w.u8(RecordType.VmDescription).u32(bytes.length).bytes(bytes);
    await this.emit();
  }

  /** Waits for every page write, writes the bitmaps, syncs both descriptors and renames into place. */
  async finish(): Promise<WriteSummary> {
    try {
      if (!this.eofWritten) await this.writeEof();
      await this.stager.drain();
      // Bitmaps last: a file cut short before this point has all bits clear, like QEMU's.
      for (const l of this.layout) if (!l.ignored) await this.main.pwrite(this.stager.bitmap(l.id), l.bitmapOffset);
      const size = this.main.position;
      await this.main.sync();
      await this.pages.sync();
      if (this.opts.prefix) {
        await this.main.pwrite(this.opts.prefix.seal, 0);
        await this.main.sync();
      }
      await this.closeFds();
      await this.out.commit();
      return { path: this.path, size, pageBytes: this.stager.bytesWritten, presentPages: this.stager.presentPages, direct: this.pages.direct, blocks: this.layout };
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Gives up: closes the descriptors and removes the temporary file; the target is untouched. */
  async abort(): Promise<void> {
    await this.stager.drain().catch(() => undefined);
    await this.closeFds();
    await this.out.discard();
  }

  private async closeFds(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.main.close().catch(() => undefined);
    await this.pages.close().catch(() => undefined);
  }

  private async emit(): Promise<void> {
    await this.main.write(this.w.view());
    this.w.length = 0;
  }
}

/**
 * The converters' fast path (internal: src/convert only, not exported from src/index.ts): stages
 * the plain-stream CONTINUE page records at the front of `records` (a view into the arena given
 * as `stager.arena`) in place; returns the bytes consumed (0: none, use writePage/zeroPage).
 */
export function stagePageRecords(writer: MappedRamWriter, blockId: string, records: Uint8Array): number {
  // Index access reaches the private stager from this module only (TypeScript's sanctioned escape).
  return writer['stager'].stageRecords(blockId, records);
}
