// Stages pages in aligned arena extents, scans them for zeros, and writes runs of present pages
// in file order, a queue of them waiting in the kernel; keeps each block's bitmap (bit set = data in the slot).
import { UsageError } from '../format/errors.js';
import { isScattered, type PageAreaFile } from '../io/direct-writer.js';
import type { ByteRuns } from '../io/file-io.js';
import { threadpoolSize } from '../io/threadpool.js';
import { Arena, type ArenaRegion } from '../kernel/arena.js';
import { getBit, POPCOUNT8, runsIn, setBit, setSpan } from '../kernel/bit-runs.js';
import type { BlockLayout } from './layout.js';

/** Options of PageStager: extent size, writes in flight, the arena to stage in. */
export interface StagerOptions {
  /** Bytes per extent (one write at most); default 8 MiB. */
  extentBytes?: number;
  /** Extents flushed but not yet written, besides the open one; default 4. */
  inFlight?: number;
  /**
   * Zero gaps of at most this many pages (bits clear) are written as zeros to keep one large write.
   * Default 0: a zero page stays a hole, so the file uses the disk space QEMU's own file uses.
   */
  maxZeroGap?: number;
  /**
   * Writes in flight (a long run each, or one extent's short runs as a batch), issued in queue
   * (file) order; default: libuv's threadpool size
   * less 2, at least 3. ext4 runs one file's allocating O_DIRECT writes one at a time, but a queue
   * waiting in the kernel keeps the disk busy across the main thread's pauses (bench/README.md);
   * two threads stay free for the input's reads (a read queued behind the writes stalls the pipeline).
   */
  maxWrites?: number;
  /**
   * Arena to stage in, shared with the caller (e.g. the converter's input buffer, so page records
   * are staged in place); it must have `PageStager.arenaBytes(opts)` free. Default: an own arena.
   */
  arena?: Arena;
}

interface BlockState {
  layout: BlockLayout;
  bitmap: Uint8Array;
}

/** An extent's page buffer and its two bit-per-page maps, all in arena memory (the kernel writes them). */
interface ExtentBuffer {
  region: ArenaRegion;
  /** Set: the slot holds the page's latest, non-zero bytes. */
  staged: Uint8Array;
  /** Set: the page was sent while the extent was open (its block bit becomes `staged`'s at flush). */
  touched: Uint8Array;
}

interface Extent extends ExtentBuffer {
  block: BlockState;
  /** Extent number within the block: pages [index*extentPages, +extentPages). */
  index: number;
}

const DEFAULT_EXTENT = 8 << 20;
const DEFAULT_IN_FLIGHT = 4;
/** Stages pages of mapped-ram blocks and writes them to their page areas (internal to the writer). */
export class PageStager {
  readonly arena: Arena;
  private readonly blocks = new Map<string, BlockState>();
  private readonly extentBytes: number;
  private readonly maxZeroGap: number;
  private readonly pool: ExtentBuffer[] = [];
  private readonly poolWaiters: Array<() => void> = [];
  /** Writes in flight, keyed by block + extent index, so a later extent never overtakes an earlier one. */
  private readonly inflight = new Map<string, Promise<void>>();
  private current: Extent | null = null;
  private readonly maxWrites: number;
  private writing = 0;
  private readonly writeQueue: Array<{ data: Uint8Array; runs: ByteRuns; position: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  private failure: unknown = null;
  /** Page bytes handed to the page-area file, zero gaps included. */
  bytesWritten = 0;
  presentPages = 0;

  constructor(
    private readonly file: PageAreaFile,
    readonly pageSize: number,
    opts: StagerOptions = {},
  ) {
    this.extentBytes = opts.extentBytes ?? DEFAULT_EXTENT;
    if (this.extentBytes % pageSize !== 0 || this.extentBytes % 4096 !== 0) throw new RangeError('extent size must be a multiple of the page size and of 4096');
    this.maxZeroGap = opts.maxZeroGap ?? 0;
    this.maxWrites = opts.maxWrites ?? Math.max(3, threadpoolSize() - 2);
    this.arena = opts.arena ?? new Arena({ bytes: PageStager.arenaBytes(opts) });
    const mapBytes = Math.ceil(this.extentPages / 8);
    for (let i = 0; i < (opts.inFlight ?? DEFAULT_IN_FLIGHT) + 1; i++) {
      const maps = this.arena.alloc(2 * mapBytes).view;
      this.pool.push({ region: this.arena.alloc(this.extentBytes), staged: maps.subarray(0, mapBytes), touched: maps.subarray(mapBytes) });
    }
  }

  /** Arena bytes a stager with these options takes (extent buffers and their bit maps). */
  static arenaBytes(opts: StagerOptions = {}): number {
    const extent = opts.extentBytes ?? DEFAULT_EXTENT;
    // Bit maps: 2 bits per page of at least 64 bytes, in 4096-byte regions.
    const maps = Math.ceil((2 * extent) / 64 / 8 / 4096) * 4096;
    return ((opts.inFlight ?? DEFAULT_IN_FLIGHT) + 1) * (extent + maps);
  }

  private get extentPages(): number {
    return this.extentBytes / this.pageSize;
  }

  addBlock(layout: BlockLayout): void {
    if (layout.pageSize !== this.pageSize) throw new UsageError(`block ${layout.id}: page size ${layout.pageSize} differs from ${this.pageSize}`);
    this.blocks.set(layout.id, { layout, bitmap: new Uint8Array(layout.bitmapSize) });
  }

  /** The bitmap as it goes into the file (valid once `drain` resolved). */
  bitmap(id: string): Uint8Array {
    return this.block(id).bitmap;
  }

  private block(id: string): BlockState {
    const b = this.blocks.get(id);
    if (!b) throw new UsageError(`no RAM block ${JSON.stringify(id)} in the layout`);
    return b;
  }

  /** Stages `data` (whole pages) as pages firstPage.. of a block; all-zero pages become holes. */
  async put(id: string, firstPage: number, data: Uint8Array): Promise<void> {
    this.check();
    const b = this.block(id);
    const ps = this.pageSize;
    const count = data.length / ps;
    if (!Number.isInteger(count) || firstPage < 0 || firstPage + count > b.layout.pages) {
      throw new UsageError(`pages ${firstPage}+${data.length / ps} outside block ${id} (${b.layout.pages} pages)`);
    }
    let done = 0;
    while (done < count) {
      const page = firstPage + done;
      const index = Math.floor(page / this.extentPages);
      const slot = page - index * this.extentPages;
      const n = Math.min(count - done, this.extentPages - slot);
      const ext = await this.extentFor(b, index);
      ext.region.view.set(data.subarray(done * ps, (done + n) * ps), slot * ps);
      this.stageSlots(ext, slot, n);
      done += n;
    }
  }

  /**
   * One page, synchronously when it falls in the open extent (the common, sequential case);
   * otherwise the returned promise must be awaited before the next call.
   */
  putPage(id: string, page: number, data: Uint8Array): Promise<void> | undefined {
    const cur = this.current;
    if (this.failure || !cur || cur.block.layout.id !== id || cur.index !== Math.floor(page / this.extentPages) || data.length !== this.pageSize) return this.put(id, page, data);
    const slot = page - cur.index * this.extentPages;
    cur.region.view.set(data, slot * this.pageSize);
    this.stageSlots(cur, slot, 1);
    return undefined;
  }

  /**
   * Stages the page records at the front of `records` (a plain stream's CONTINUE PAGE/ZERO
   * records of block `id`, in this arena's memory) that fall in the open extent, in place.
   * Returns the bytes consumed; 0 means the next record needs the per-record path.
   */
  stageRecords(id: string, records: Uint8Array): number {
    const cur = this.current;
    if (this.failure || !cur || cur.block.layout.id !== id || records.buffer !== this.arena.buffer) return 0;
    const first = cur.index * this.extentPages;
    const limit = Math.min(this.extentPages, cur.block.layout.pages - first);
    const consumed = this.arena.kernel.stagePageRecords(
      records.byteOffset,
      records.length,
      Math.log2(this.pageSize),
      first * this.pageSize,
      limit,
      cur.region.ptr,
      cur.staged.byteOffset,
      cur.touched.byteOffset,
    );
    // The very first pages go out as soon as one input read is staged, not once a whole extent is:
    // the disk starts tens of milliseconds earlier (the rest of the extent reopens, as for re-sent pages).
    if (consumed > 0 && this.bytesWritten === 0 && this.inflight.size === 0) {
      this.flush(cur);
      this.current = null;
    }
    return consumed;
  }

  /** A page that is zero now: its bit is cleared (old bytes in its slot become stale). */
  zero(id: string, page: number): Promise<void> | undefined {
    this.check();
    const b = this.block(id);
    if (page < 0 || page >= b.layout.pages) throw new UsageError(`page ${page} outside block ${id}`);
    const cur = this.current;
    const index = Math.floor(page / this.extentPages);
    // Zero runs move the open extent along like data does, so the next records stay on the fast path.
    if (cur && cur.block === b && cur.index === index) this.clearSlot(cur, page - index * this.extentPages);
    else return this.extentFor(b, index).then((ext) => this.clearSlot(ext, page - index * this.extentPages));
    return undefined;
  }

  /** Writes the staged extent and waits for every write. */
  async drain(): Promise<void> {
    if (this.current) this.flush(this.current);
    this.current = null;
    await Promise.all([...this.inflight.values()]);
    this.check();
  }

  /** Scans slots [slot, slot+n) of the open extent in place and marks them sent. */
  private stageSlots(ext: Extent, slot: number, n: number): void {
    this.arena.scan(ext.region.view.subarray(slot * this.pageSize, (slot + n) * this.pageSize), this.pageSize, ext.staged, slot);
    for (let i = slot; i < slot + n; i++) setBit(ext.touched, i, 1);
  }

  private clearSlot(ext: Extent, slot: number): void {
    setBit(ext.staged, slot, 0);
    setBit(ext.touched, slot, 1);
  }

  /** Folds an extent's sent pages into its block's bitmap: bit = staged where touched. */
  private merge(ext: Extent): void {
    const { bitmap } = ext.block;
    const first = ext.index * this.extentPages;
    const { staged, touched } = ext;
    if (first % 8 !== 0) {
      // Extents of fewer than 8 pages: bit by bit.
      for (let i = 0; i < this.extentPages; i++) {
        if (!getBit(touched, i)) continue;
        const was = getBit(bitmap, first + i);
        const now = getBit(staged, i);
        setBit(bitmap, first + i, now);
        this.presentPages += now - was;
      }
      return;
    }
    const base = first / 8;
    for (let j = 0; j < touched.length; j++) {
      const t = touched[j]!;
      if (t === 0) continue;
      const was = bitmap[base + j]!;
      const now = (was & ~t) | (staged[j]! & t);
      bitmap[base + j] = now;
      this.presentPages += POPCOUNT8[now]! - POPCOUNT8[was]!;
    }
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  private async extentFor(b: BlockState, index: number): Promise<Extent> {
    const cur = this.current;
    if (cur && cur.block === b && cur.index === index) return cur;
    if (cur) this.flush(cur);
    this.current = null;
    const buffer = await this.takeBuffer();
    // A re-sent page must not race an older write of the same slots.
    await this.inflight.get(`${b.layout.id}\0${index}`);
    this.check();
    buffer.staged.fill(0);
    buffer.touched.fill(0);
    this.current = { ...buffer, block: b, index };
    return this.current;
  }

  private async takeBuffer(): Promise<ExtentBuffer> {
    while (this.pool.length === 0) {
      await new Promise<void>((r) => this.poolWaiters.push(r));
      this.check();
    }
    return this.pool.pop()!;
  }

  private flush(ext: Extent): void {
    // The block bitmap must hold this extent's pages before any later extent or zero() changes it.
    this.merge(ext);
    const key = `${ext.block.layout.id}\0${ext.index}`;
    const prev = this.inflight.get(key) ?? Promise.resolve();
    const p = prev
      .then(() => this.writeExtent(ext))
      .catch((e) => {
        this.failure ??= e;
      })
      .finally(() => {
        if (this.inflight.get(key) === p) this.inflight.delete(key);
        this.pool.push({ region: ext.region, staged: ext.staged, touched: ext.touched });
        this.poolWaiters.shift()?.();
      });
    this.inflight.set(key, p);
  }

  private async writeExtent(ext: Extent): Promise<void> {
    const ps = this.pageSize;
    const { layout } = ext.block;
    const base = ext.index * this.extentPages;
    const pages = Math.min(this.extentPages, layout.pages - base);
    const runs = this.writeRuns(ext, pages).map(([start, end]) => [start * ps, end * ps] as const);
    // The runs of one extent are disjoint: all of them join the write queue at once, each long one
    // as a write of its own, the short ones as one batch (the page-area file writes them together).
    const short = runs.filter(isScattered);
    const writes = runs.filter((r) => !isScattered(r)).map((r) => [r]);
    if (short.length > 0) writes.push(short);
    const at = layout.pagesOffset + base * ps;
    await Promise.all(writes.map((w) => this.queueWrite(ext.region.view, w, at)));
  }

  /**
   * Runs of staged slots as [start, end) writes. A gap of at most maxZeroGap slots that hold
   * nothing valid (bit clear in the block too) is zeroed and absorbed: one write beats two syscalls.
   */
  private writeRuns(ext: Extent, pages: number): Array<[number, number]> {
    const base = ext.index * this.extentPages;
    const runs: Array<[number, number]> = [];
    for (const r of runsIn(ext.staged, 0, pages)) {
      const last = runs[runs.length - 1];
      if (last && r.start - last[1] <= this.maxZeroGap && !setSpan(ext.block.bitmap, base + last[1], base + r.start)) {
        ext.region.view.fill(0, last[1] * this.pageSize, r.start * this.pageSize);
        last[1] = r.start + r.count;
      } else runs.push([r.start, r.start + r.count]);
    }
    return runs;
  }

  /** Writes (runs of `data`, placed from `position`) in the order they were queued, `maxWrites` at a time. */
  private queueWrite(data: Uint8Array, runs: ByteRuns, position: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.writeQueue.push({ data, runs, position, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.writing < this.maxWrites && this.writeQueue.length > 0) {
      const w = this.writeQueue.shift()!;
      this.writing++;
      this.file.writeRuns(w.data, w.runs, w.position).then(
        () => {
          for (const [start, end] of w.runs) this.bytesWritten += end - start;
          w.resolve();
        },
        w.reject,
      ).finally(() => {
        this.writing--;
        this.pump();
      });
    }
  }
}
