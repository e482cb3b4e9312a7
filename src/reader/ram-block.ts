// Random access to one RAM block's guest memory, whichever encoding stored it.
import { FormatError, IgnoredBlockError, UsageError } from '../format/errors.js';
import { isIgnoredEntry, type RamBlockEntry } from '../codec/ram.js';
import type { FileSource } from '../io/file-source.js';
import { bitmapBytes, countPresent, presentRuns, type PageRun } from '../kernel/index.js';

export abstract class RamBlock {
  readonly id: string;
  readonly usedLength: number;
  /** Number of pages of `pageSize` bytes. */
  readonly pages: number;

  constructor(
    protected readonly source: FileSource,
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
  abstract isPresent(page: number): boolean;
  /** Absolute file offset of a present page's bytes, or null when the page reads as zeros. */
  abstract pageOffset(page: number): number | null;
  /** Runs of consecutive present pages, in page order. */
  abstract presentRuns(): Iterable<PageRun>;

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
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const page = Math.floor(at / this.pageSize);
      const inPage = at - page * this.pageSize;
      let n = Math.min(this.pageSize - inPage, length - done);
      const src = this.pageOffset(page);
      // Coalesce following pages whose bytes continue contiguously in the file (mapped-ram runs).
      let next = page + 1;
      while (done + n < length) {
        const o = this.pageOffset(next);
        if (src === null ? o !== null : o !== src + (next - page) * this.pageSize) break;
        n += Math.min(this.pageSize, length - done - n);
        next++;
      }
      const dst = into.subarray(done, done + n);
      if (src === null) dst.fill(0);
      else {
        const got = await this.source.readInto(dst, src + inPage);
        if (got < n) throw new FormatError(src + inPage + got, `page data of block ${JSON.stringify(this.id)} page ${page}`, 'end of file', 'truncated');
      }
      done += n;
    }
    return into;
  }

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
    source: FileSource,
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

  static async load(source: FileSource, entry: RamBlockEntry): Promise<MappedRamBlock> {
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
    return ((this.bitmap[page >>> 3]! >>> (page & 7)) & 1) === 1;
  }

  pageOffset(page: number): number | null {
    return this.isPresent(page) ? this.pagesOffset + page * this.pageSize : null;
  }

  presentRuns(): Iterable<PageRun> {
    return this.ignored ? [] : presentRuns(this.bitmap, this.pages);
  }
}

const ZERO_PAGE = -1;
const denseBudget = new WeakMap<FileSource, { left: number }>();

/** A block of a plain stream: pages are records scattered through the file; the last record of a page wins. */
export class StreamRamBlock extends RamBlock {
  readonly encoding = 'stream';
  readonly bitmapOffset = null;
  readonly pagesOffset = null;
  private presentCount = 0;
  private sentCount = 0;
  /** Page → data offset (> 0), ZERO_PAGE, or 0/absent for never sent. Dense when that fits the file size. */
  private readonly dense: Float64Array | null;
  private readonly sparse: Map<number, number> | null;

  constructor(source: FileSource, entry: RamBlockEntry, pageSize: number) {
    super(source, entry, pageSize);
    // A dense table costs 8 bytes a page; the tables of all blocks of a file share a budget of about
    // the file's size, so a hostile list of many huge blocks cannot allocate more than the file holds.
    let budget = denseBudget.get(source);
    if (!budget) denseBudget.set(source, (budget = { left: Math.max(source.size, 1 << 20) }));
    const fits = this.pages * 8 <= budget.left;
    if (fits) budget.left -= this.pages * 8;
    this.dense = fits ? new Float64Array(this.pages) : null;
    this.sparse = fits ? null : new Map();
  }

  get presentPages(): number {
    return this.presentCount;
  }

  /** Records a PAGE (data offset) or ZERO (null) record for a page. */
  record(page: number, dataOffset: number | null): void {
    const value = dataOffset ?? ZERO_PAGE;
    const old = this.dense ? this.dense[page]! : (this.sparse!.get(page) ?? 0);
    if (this.dense) this.dense[page] = value;
    else this.sparse!.set(page, value);
    this.presentCount += (value > 0 ? 1 : 0) - (old > 0 ? 1 : 0);
    if (old === 0) this.sentCount++;
  }

  /**
   * Under x-ignore-shared (guest address in the entry), a block of which no page record was seen:
   * QEMU sends every page of the blocks it migrates (zero pages as ZERO records), so this is a
   * block it left out. Known once the walk has seen every record.
   */
  get ignored(): boolean {
    return this.entry.mrAddr !== null && this.usedLength > 0 && this.sentCount === 0;
  }

  /** Whether a record (PAGE or ZERO) was seen for the page. */
  wasSent(page: number): boolean {
    this.checkPage(page);
    return (this.dense ? this.dense[page]! : (this.sparse!.get(page) ?? 0)) !== 0;
  }

  isPresent(page: number): boolean {
    return this.pageOffset(page) !== null;
  }

  pageOffset(page: number): number | null {
    this.checkPage(page);
    const v = this.dense ? this.dense[page]! : (this.sparse!.get(page) ?? 0);
    return v > 0 ? v : null;
  }

  *presentRuns(): Iterable<PageRun> {
    if (this.ignored) return;
    const pages = this.dense ? null : [...this.sparse!.entries()].filter(([, v]) => v > 0).map(([p]) => p).sort((a, b) => a - b);
    let runStart = -1;
    let prev = -2;
    const each = pages ?? this.densePresent();
    for (const p of each) {
      if (p !== prev + 1) {
        if (runStart >= 0) yield { start: runStart, count: prev - runStart + 1 };
        runStart = p;
      }
      prev = p;
    }
    if (runStart >= 0) yield { start: runStart, count: prev - runStart + 1 };
  }

  private *densePresent(): Iterable<number> {
    const d = this.dense!;
    for (let i = 0; i < d.length; i++) if (d[i]! > 0) yield i;
  }
}
