// Stages pages in aligned arena extents, scans them for zeros, and writes runs of present pages
// with several writes in flight; keeps each block's bitmap (bit set = data in the slot).
import { UsageError } from '../format/errors.js';
import type { PageAreaFile } from '../io/direct-writer.js';
import { Arena, type ArenaRegion } from '../kernel/arena.js';
import type { BlockLayout } from './layout.js';

export interface StagerOptions {
  /** Bytes per extent (one write at most); default 8 MiB. */
  extentBytes?: number;
  /** Extents writing at once; default 4. */
  inFlight?: number;
  /** Zero gaps of at most this many pages (bits clear) are written as zeros to keep one large write. */
  maxZeroGap?: number;
  /**
   * Write syscalls queued at once; default 3, so one of libuv's 4 threadpool threads stays free
   * for the input's reads (a read queued behind dozens of writes stalls the whole pipeline).
   */
  maxWrites?: number;
}

interface BlockState {
  layout: BlockLayout;
  bitmap: Uint8Array;
}

interface Extent {
  block: BlockState;
  /** Extent number within the block: pages [index*extentPages, +extentPages). */
  index: number;
  region: ArenaRegion;
  /** Bit per page of the extent: staged and non-zero. */
  staged: Uint8Array;
}

const getBit = (b: Uint8Array, i: number) => (b[i >>> 3]! >>> (i & 7)) & 1;
const setBit = (b: Uint8Array, i: number, v: number) => {
  if (v) b[i >>> 3]! |= 1 << (i & 7);
  else b[i >>> 3]! &= ~(1 << (i & 7));
};

export class PageStager {
  readonly arena: Arena;
  private readonly blocks = new Map<string, BlockState>();
  private readonly extentBytes: number;
  private readonly maxZeroGap: number;
  private readonly pool: ArenaRegion[] = [];
  private readonly poolWaiters: Array<() => void> = [];
  /** Writes in flight, keyed by block + extent index, so a later extent never overtakes an earlier one. */
  private readonly inflight = new Map<string, Promise<void>>();
  private current: Extent | null = null;
  private readonly maxWrites: number;
  private writing = 0;
  private readonly writeWaiters: Array<() => void> = [];
  private failure: unknown = null;
  /** Page bytes handed to the page-area file, zero gaps included. */
  bytesWritten = 0;
  presentPages = 0;

  constructor(
    private readonly file: PageAreaFile,
    readonly pageSize: number,
    opts: StagerOptions = {},
  ) {
    this.extentBytes = opts.extentBytes ?? 8 << 20;
    if (this.extentBytes % pageSize !== 0 || this.extentBytes % 4096 !== 0) throw new RangeError('extent size must be a multiple of the page size and of 4096');
    this.maxZeroGap = opts.maxZeroGap ?? 8;
    this.maxWrites = opts.maxWrites ?? 3;
    const buffers = (opts.inFlight ?? 4) + 1;
    this.arena = new Arena({ bytes: buffers * this.extentBytes });
    for (let i = 0; i < buffers; i++) this.pool.push(this.arena.alloc(this.extentBytes));
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
      const cur = this.current;
      // Sequential pages land in the open extent: no await on the hot path.
      const ext = cur && cur.block === b && cur.index === index ? cur : await this.extentFor(b, index);
      const view = ext.region.view.subarray(slot * ps, (slot + n) * ps);
      view.set(data.subarray(done * ps, (done + n) * ps));
      this.arena.scan(view, ps, ext.staged, slot);
      for (let i = 0; i < n; i++) this.setPresent(b, page + i, getBit(ext.staged, slot + i));
      done += n;
    }
  }

  /**
   * One page, synchronously when it falls in the open extent (the common, sequential case);
   * otherwise the returned promise must be awaited before the next call.
   */
  putPage(id: string, page: number, data: Uint8Array): Promise<void> | undefined {
    const cur = this.current;
    const index = Math.floor(page / this.extentPages);
    if (this.failure || !cur || cur.block.layout.id !== id || cur.index !== index || data.length !== this.pageSize) return this.put(id, page, data);
    const slot = page - index * this.extentPages;
    const view = cur.region.view.subarray(slot * this.pageSize, (slot + 1) * this.pageSize);
    view.set(data);
    const nonZero = this.arena.scan(view, this.pageSize, cur.staged, slot).nonZeroPages;
    this.setPresent(cur.block, page, nonZero);
    return undefined;
  }

  /** A page that is zero now: its bit is cleared (old bytes in its slot become stale). */
  zero(id: string, page: number): void {
    this.check();
    const b = this.block(id);
    if (page < 0 || page >= b.layout.pages) throw new UsageError(`page ${page} outside block ${id}`);
    const ext = this.current;
    if (ext && ext.block === b && Math.floor(page / this.extentPages) === ext.index) setBit(ext.staged, page - ext.index * this.extentPages, 0);
    this.setPresent(b, page, 0);
  }

  /** Writes the staged extent and waits for every write. */
  async drain(): Promise<void> {
    if (this.current) this.flush(this.current);
    this.current = null;
    await Promise.all([...this.inflight.values()]);
    this.check();
  }

  private setPresent(b: BlockState, page: number, v: number): void {
    const was = getBit(b.bitmap, page);
    if (was !== v) {
      setBit(b.bitmap, page, v);
      this.presentPages += v ? 1 : -1;
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
    const region = await this.takeBuffer();
    // A re-sent page must not race an older write of the same slots.
    await this.inflight.get(`${b.layout.id}\0${index}`);
    this.check();
    this.current = { block: b, index, region, staged: new Uint8Array(Math.ceil(this.extentPages / 8)) };
    return this.current;
  }

  private async takeBuffer(): Promise<ArenaRegion> {
    while (this.pool.length === 0) {
      await new Promise<void>((r) => this.poolWaiters.push(r));
      this.check();
    }
    return this.pool.pop()!;
  }

  private flush(ext: Extent): void {
    const key = `${ext.block.layout.id}\0${ext.index}`;
    const prev = this.inflight.get(key) ?? Promise.resolve();
    const p = prev
      .then(() => this.writeExtent(ext))
      .catch((e) => {
        this.failure ??= e;
      })
      .finally(() => {
        if (this.inflight.get(key) === p) this.inflight.delete(key);
        this.pool.push(ext.region);
        this.poolWaiters.shift()?.();
      });
    this.inflight.set(key, p);
  }

  private async writeExtent(ext: Extent): Promise<void> {
    const ps = this.pageSize;
    const { layout, bitmap } = ext.block;
    const base = ext.index * this.extentPages;
    const pages = Math.min(this.extentPages, layout.pages - base);
    const runs: Array<[number, number]> = [];
    let i = 0;
    while (i < pages) {
      if (!getBit(ext.staged, i)) {
        i++;
        continue;
      }
      const start = i;
      let end = i + 1;
      for (;;) {
        while (end < pages && getBit(ext.staged, end)) end++;
        // Absorb a short gap whose slots hold nothing valid: one write beats two syscalls.
        let gap = end;
        while (gap < pages && gap - end < this.maxZeroGap && !getBit(ext.staged, gap) && !getBit(bitmap, base + gap)) gap++;
        if (gap === end || gap >= pages || !getBit(ext.staged, gap)) break;
        ext.region.view.fill(0, end * ps, gap * ps);
        end = gap;
      }
      runs.push([start, end]);
      i = end;
    }
    // The runs of one extent are disjoint: all of them go to the threadpool at once.
    await Promise.all(
      runs.map(async ([start, end]) => {
        const view = ext.region.view.subarray(start * ps, end * ps);
        while (this.writing >= this.maxWrites) await new Promise<void>((r) => this.writeWaiters.push(r));
        this.writing++;
        try {
          await this.file.write(view, layout.pagesOffset + (base + start) * ps);
        } finally {
          this.writing--;
          this.writeWaiters.shift()?.();
        }
        this.bytesWritten += view.length;
      }),
    );
  }
}
