// Random access to one RAM block's guest memory, whichever encoding stored it.
import { FormatError, IgnoredBlockError, UsageError } from '../format/errors.js';
import { isIgnoredEntry, type RamBlockEntry } from '../codec/ram.js';
import type { PositionalSource } from '../io/source.js';
import { countPresent, getBit, hasSetBit, indexRuns, presentRuns, runsIn, setBit, setSpan, type PageRun } from '../kernel/bit-runs.js';
import { bitmapBytes, type Arena } from '../kernel/index.js';
import { gatherPages, readMappedPages, type ChunkOptions, type PageChunk, type PageReads } from './page-reader.js';

/** One RAM block of a migration file: its geometry, which pages the file holds, and their bytes. */
export abstract class RamBlock {
  readonly id: string;
  readonly usedLength: number;
  /** Number of pages of `pageSize` bytes. */
  readonly pages: number;

  constructor(
    protected readonly source: PositionalSource,
    readonly entry: RamBlockEntry,
    readonly pageSize: number,
  ) {
    this.id = entry.idstr;
    this.usedLength = entry.usedLength;
    this.pages = entry.usedLength / pageSize;
  }

  abstract readonly encoding: 'mapped-ram' | 'stream';
  /**
   * x-ignore-shared left the block out: its memory is not in the file (the destination maps it
   * from the shared backend). Such a block has no present pages, and reading it throws
   * IgnoredBlockError.
   */
  abstract readonly ignored: boolean;
  /** Pages whose content is stored in the file (all others read as zeros). */
  abstract readonly presentPages: number;
  /** Whether the file holds data for `page` (a set bit, or a PAGE record that won). */
  abstract isPresent(page: number): boolean;
  /** Absolute file offset of a present page's bytes, or null when the page reads as zeros. */
  abstract pageOffset(page: number): number | null;
  /** Runs of consecutive present pages, in page order. */
  abstract presentRuns(): Iterable<PageRun>;

  /**
   * The block's guest-visible content chunk by chunk, read through the file's open source into
   * regions of `arena` (the caller's; size it with readerArena). Each chunk is valid until the
   * next one is requested.
   */
  abstract chunks(arena: Arena, opts?: ChunkOptions): AsyncGenerator<PageChunk, void, undefined>;

  /**
   * Guest-visible content of pages [firstPage, firstPage+count) into `into` (zeros where absent),
   * through `reads` (O_DIRECT where it applies): what every other read of the block comes down to.
   */
  abstract readPages(into: Uint8Array, firstPage: number, count: number, reads?: PageReads): Promise<void>;

  /** One page of guest RAM (zeros when absent). */
  async readPage(page: number, into?: Uint8Array): Promise<Uint8Array> {
    this.checkPage(page);
    return this.read(page * this.pageSize, this.pageSize, into);
  }

  /** Any byte range of the block's guest RAM; absent pages read as zeros. */
  async read(offset: number, length: number, into: Uint8Array = new Uint8Array(length)): Promise<Uint8Array> {
    if (this.ignored) throw new IgnoredBlockError(this.id);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.usedLength) {
      throw new UsageError(`range ${offset}+${length} is outside block ${this.id} (${this.usedLength} bytes)`);
    }
    if (into.length < length) throw new UsageError(`buffer of ${into.length} bytes is smaller than ${length}`);
    const ps = this.pageSize;
    const first = Math.floor(offset / ps);
    const count = Math.ceil((offset + length) / ps) - first;
    if (offset % ps === 0 && length % ps === 0) await this.readPages(into, first, count);
    else {
      // A range that starts or ends inside a page: whole pages, then the bytes asked for.
      const pages = new Uint8Array(count * ps);
      await this.readPages(pages, first, count);
      into.set(pages.subarray(offset - first * ps, offset - first * ps + length));
    }
    return into;
  }

  /** Throws a RangeError for a page index outside the block. */
  protected checkPage(page: number): void {
    if (this.ignored) throw new IgnoredBlockError(this.id);
    if (!Number.isSafeInteger(page) || page < 0 || page >= this.pages) throw new UsageError(`page ${page} is outside block ${this.id} (${this.pages} pages)`);
  }
}

/** A block of a mapped-ram file: a bitmap and a page area where page i sits at pagesOffset + i*pageSize. */
export class MappedRamBlock extends RamBlock {
  readonly encoding = 'mapped-ram';
  readonly ignored: boolean;
  readonly bitmapOffset: number;
  readonly pagesOffset: number;
  readonly presentPages: number;

  constructor(
    source: PositionalSource,
    entry: RamBlockEntry,
    /** The raw bitmap as stored (ceil(pages/64) little-endian u64 words). */
    readonly bitmap: Uint8Array,
  ) {
    super(source, entry, entry.mappedRam!.pageSize);
    this.ignored = isIgnoredEntry(entry);
    this.bitmapOffset = entry.mappedRam!.bitmapOffset;
    this.pagesOffset = entry.mappedRam!.pagesOffset;
    this.presentPages = this.ignored ? 0 : countPresent(bitmap, this.pages);
  }

  /** Reads the block's bitmap (none for a block x-ignore-shared left out). */
  static async load(source: PositionalSource, entry: RamBlockEntry): Promise<MappedRamBlock> {
    const h = entry.mappedRam!;
    // Offset 0/0 is no bitmap: reading there would take the file's own header for one.
    if (isIgnoredEntry(entry)) return new MappedRamBlock(source, entry, new Uint8Array(0));
    const pages = entry.usedLength / h.pageSize;
    const size = bitmapBytes(pages);
    if (h.bitmapOffset + size > source.size) {
      throw new FormatError(h.headerOffset + 12, `bitmap of block ${JSON.stringify(entry.idstr)} (${size} bytes) inside the file of ${source.size} bytes`, `offset ${h.bitmapOffset}`);
    }
    const bitmap = new Uint8Array(size);
    await source.readInto(bitmap, h.bitmapOffset);
    return new MappedRamBlock(source, entry, bitmap);
  }

  isPresent(page: number): boolean {
    this.checkPage(page);
    return getBit(this.bitmap, page) === 1;
  }

  pageOffset(page: number): number | null {
    return this.isPresent(page) ? this.pagesOffset + page * this.pageSize : null;
  }

  presentRuns(): Iterable<PageRun> {
    return this.ignored ? [] : presentRuns(this.bitmap, this.pages);
  }

  /** The whole page area is read, stale data under clear bits included (it is zeroed, and reported in `scanned`). */
  chunks(arena: Arena, opts: ChunkOptions = {}): AsyncGenerator<PageChunk, void, undefined> {
    if (this.ignored) throw new IgnoredBlockError(this.id);
    // presentOnly: chunks without a set bit are not read (they come back as zeros).
    const skip = opts.presentOnly ? (first: number, pages: number) => !hasSetBit(this.bitmap, first, pages) : undefined;
    return readMappedPages(this.source, this, arena, { ...opts, skip });
  }

  /** One positional read of the span (O_DIRECT when aligned); pages under clear bits read as zeros. */
  async readPages(into: Uint8Array, firstPage: number, count: number, reads?: PageReads): Promise<void> {
    if (count === 0) return;
    this.checkPage(firstPage);
    const len = count * this.pageSize;
    const pos = this.pagesOffset + firstPage * this.pageSize;
    const dst = into.subarray(0, len);
    const got = pos >= this.source.size ? 0 : reads ? await reads.read(dst, len, pos) : await this.source.readInto(dst, pos);
    if (got < len) {
      // The file ends inside the span: an error only if a page it cuts off holds data.
      const page = firstPage + Math.floor(got / this.pageSize);
      if (setSpan(this.bitmap, page, firstPage + count)) throw new FormatError(pos + got, `page ${page} of block ${JSON.stringify(this.id)} (its bitmap bit is set)`, 'end of file', 'truncated');
      dst.fill(0, got);
    }
    // Data under clear bits is not guest RAM: the guest sees zeros there.
    for (const r of runsIn(this.bitmap, firstPage, firstPage + count, false)) into.fill(0, (r.start - firstPage) * this.pageSize, (r.start - firstPage + r.count) * this.pageSize);
  }
}

/**
 * What the page tables of a file's stream blocks may allocate: about the file's size, so a
 * hostile list of many huge blocks cannot allocate more than the file holds. One per file.
 */
export class PageTableBudget {
  /** Bytes still free. */
  left: number;

  constructor(fileSize: number) {
    this.left = Math.max(fileSize, 1 << 20);
  }

  /** Takes `bytes` if they fit. */
  take(bytes: number): boolean {
    if (bytes > this.left) return false;
    this.left -= bytes;
    return true;
  }
}

const ZERO_PAGE = -1;
/** Pages per segment of a dense page table: a segment's offsets exist once a record of it carries data. */
const SEGMENT_PAGES = 512;

/** A block of a plain stream: pages are records scattered through the file; the last record of a page wins. */
export class StreamRamBlock extends RamBlock {
  readonly encoding = 'stream';
  readonly bitmapOffset = null;
  readonly pagesOffset = null;
  private presentCount = 0;
  private resentCount = 0;
  /** Pages with more than one record (a live save re-sent them): a bitmap beside a dense table, else a set. */
  private resentBits: Uint8Array | null = null;
  private readonly resentSet: Set<number> | null;
  private sentCount = 0;
  /**
   * Dense table, when it fits the file's budget: a bit per page that has a record, and data offsets
   * per segment of pages, allocated by the first data record in it. A guest of zero records (QEMU
   * sends every page of a mostly empty guest so) costs one bit a page, not eight bytes.
   */
  private readonly sentBits: Uint8Array | null;
  private readonly segments: Array<Float64Array | undefined> | null;
  /** Page → data offset (> 0) or ZERO_PAGE, when the dense table does not fit. */
  private readonly sparse: Map<number, number> | null;

  /** A block of `source` whose page table (at most 8 bytes a page when dense) draws on the file's `budget`. */
  constructor(source: PositionalSource, entry: RamBlockEntry, pageSize: number, budget: PageTableBudget) {
    super(source, entry, pageSize);
    const fits = budget.take(this.pages * 8);
    this.sentBits = fits ? new Uint8Array(Math.ceil(this.pages / 8)) : null;
    this.segments = fits ? new Array<Float64Array | undefined>(Math.ceil(this.pages / SEGMENT_PAGES)) : null;
    this.sparse = fits ? null : new Map();
    this.resentSet = fits ? null : new Set();
  }

  /** The page's entry: its data offset (> 0), ZERO_PAGE, or 0 when no record of it was seen. */
  private slot(page: number): number {
    if (!this.sentBits) return this.sparse!.get(page) ?? 0;
    if (!getBit(this.sentBits, page)) return 0;
    const v = this.segments![Math.floor(page / SEGMENT_PAGES)]?.[page % SEGMENT_PAGES] ?? 0;
    return v > 0 ? v : ZERO_PAGE;
  }

  private setSlot(page: number, value: number): void {
    if (!this.sentBits) {
      this.sparse!.set(page, value);
      return;
    }
    setBit(this.sentBits, page, 1);
    const k = Math.floor(page / SEGMENT_PAGES);
    let seg = this.segments![k];
    if (!seg && value > 0) seg = this.segments![k] = new Float64Array(SEGMENT_PAGES);
    if (seg) seg[page % SEGMENT_PAGES] = value > 0 ? value : 0;
  }

  get presentPages(): number {
    return this.presentCount;
  }

  /** Pages for which the stream holds more than one record (the last one wins). */
  get resentPages(): number {
    return this.resentCount;
  }

  /** Whether the stream holds more than one record for the page. */
  wasResent(page: number): boolean {
    this.checkPage(page);
    return this.resentSet ? this.resentSet.has(page) : this.resentBits !== null && getBit(this.resentBits, page) === 1;
  }

  /** Records a PAGE (data offset) or ZERO (null) record for a page. */
  record(page: number, dataOffset: number | null): void {
    const value = dataOffset ?? ZERO_PAGE;
    const old = this.slot(page);
    this.setSlot(page, value);
    this.presentCount += (value > 0 ? 1 : 0) - (old > 0 ? 1 : 0);
    if (old === 0) this.sentCount++;
    else this.markResent(page);
  }

  /**
   * Under x-ignore-shared (guest address in the entry), a block of which no page record was seen:
   * QEMU sends every page of the blocks it migrates (zero pages as ZERO records), so this is a
   * block it left out. Known once the walk has seen every record.
   */
  get ignored(): boolean {
    return this.entry.mrAddr !== null && this.usedLength > 0 && this.sentCount === 0;
  }

  private markResent(page: number): void {
    if (this.resentSet) {
      if (!this.resentSet.has(page)) this.resentCount++;
      this.resentSet.add(page);
      return;
    }
    // Beside a dense table of 8 bytes a page, one bit a page is within the same budget.
    this.resentBits ??= new Uint8Array(Math.ceil(this.pages / 8));
    if (!getBit(this.resentBits, page)) this.resentCount++;
    setBit(this.resentBits, page, 1);
  }

  isPresent(page: number): boolean {
    return this.pageOffset(page) !== null;
  }

  pageOffset(page: number): number | null {
    this.checkPage(page);
    const v = this.slot(page);
    return v > 0 ? v : null;
  }

  presentRuns(): Iterable<PageRun> {
    if (this.ignored) return [];
    const pages = this.segments ? null : [...this.sparse!.entries()].filter(([, v]) => v > 0).map(([p]) => p).sort((a, b) => a - b);
    return indexRuns(pages ?? this.densePresent());
  }

  /** Page by page from their records, coalescing pages whose bytes follow each other in the file. */
  async readPages(into: Uint8Array, firstPage: number, count: number): Promise<void> {
    const ps = this.pageSize;
    const end = firstPage + count;
    for (let p = firstPage; p < end; ) {
      const src = this.pageOffset(p);
      let n = 1;
      while (p + n < end && this.pageOffset(p + n) === (src === null ? null : src + n * ps)) n++;
      const dst = into.subarray((p - firstPage) * ps, (p - firstPage + n) * ps);
      if (src === null) dst.fill(0);
      else {
        const got = await this.source.readInto(dst, src);
        if (got < dst.length) throw new FormatError(src + got, `page data of block ${JSON.stringify(this.id)} page ${p}`, 'end of file', 'truncated');
      }
      p += n;
    }
  }

  /** Pages gathered from their records. */
  chunks(arena: Arena, opts: ChunkOptions = {}): AsyncGenerator<PageChunk, void, undefined> {
    if (this.ignored) throw new IgnoredBlockError(this.id);
    return gatherPages(this, arena, opts);
  }

  /** Present pages of the dense table: only segments that ever held data are looked at. */
  private *densePresent(): Iterable<number> {
    const segs = this.segments!;
    for (let k = 0; k < segs.length; k++) {
      const seg = segs[k];
      if (seg) for (let i = 0; i < SEGMENT_PAGES; i++) if (seg[i]! > 0) yield k * SEGMENT_PAGES + i;
    }
  }
}
