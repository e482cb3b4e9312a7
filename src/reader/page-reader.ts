// Streams a RAM block's guest-visible content in large chunks through the caller's wasm arena and
// scans it. Mapped-ram page areas are read sequentially with O_DIRECT, several reads in flight.
import type { promises as fsp } from 'node:fs';
import { runsIn } from '../kernel/bit-runs.js';
import { Arena, type ArenaRegion } from '../kernel/index.js';
import { DIRECT_ALIGN, readAllAt, readAllAtSync } from '../io/file-io.js';
import type { PositionalSource } from '../io/source.js';
import type { RamBlock } from './ram-block.js';

export { DIRECT_ALIGN };

/** Geometry of a mapped-ram block: where its pages are and which ones its bitmap claims. */
export interface MappedPages {
  pageSize: number;
  pages: number;
  pagesOffset: number;
  bitmap: Uint8Array;
}

/** A chunk of a block's guest-visible pages, in arena memory. */
export interface PageChunk {
  /** Index of the chunk's first page in the block (a multiple of 8). */
  firstPage: number;
  pages: number;
  /** Guest-visible bytes of these pages (zeros where absent); valid until the next chunk is requested. */
  data: Uint8Array;
  /** Bit i = page firstPage+i holds a non-zero byte in the file's page slot (before masking by the bitmap). */
  scanned: Uint8Array;
  /** Bit i = page firstPage+i is non-zero in the guest-visible content. */
  present: Uint8Array;
  /** Pages of the chunk wholly or partly beyond the end of the file (mapped-ram only). */
  pagesPastEof: number;
}

/** How a block's pages are read: chunk size, reads in flight, O_DIRECT. */
export interface PageReaderOptions {
  /** Bytes per read (default 4 MiB; at least 1 MiB keeps O_DIRECT efficient). */
  chunkBytes?: number;
  /** Reads in flight (default 4, the size of libuv's thread pool). */
  depth?: number;
  /** Use O_DIRECT when the file system and offsets allow (default true). */
  direct?: boolean;
  /**
   * O_DIRECT reads on the calling thread, one at a time into one buffer, each once the chunk before
   * it is consumed (`depth` is then 1; where O_DIRECT is not possible, reads stay in flight): the
   * fastest way through a fragmented file, for callers with no other I/O to overlap (verify). The
   * event loop gets a turn every 10 ms. Default false.
   */
  blocking?: boolean;
}

/** Options of RamBlock.chunks. */
export interface ChunkOptions extends PageReaderOptions {
  /** Read only chunks holding a present page; the others are left out (streams) or produced as zeros unread (mapped-ram): work bounded by the data. */
  presentOnly?: boolean;
}

const DEFAULT_CHUNK = 4 << 20;
const DEFAULT_DEPTH = 4;
// Blocking reads give the event loop a turn this often (timers, signals, a library caller's other work).
const BLOCKING_TURN_MS = 10;
// Most chunks one zero chunk of readMappedPages stands for (64 MiB of 4 MiB chunks).
const ZERO_SPAN_CHUNKS = 16;

/** An arena sized for one reader: a data slot per read in flight and one more, plus their scan bitmaps. */
export function readerArena(opts: PageReaderOptions = {}): Arena {
  const chunk = opts.chunkBytes ?? DEFAULT_CHUNK;
  const depth = opts.depth ?? DEFAULT_DEPTH;
  return new Arena({ bytes: (depth + 1) * (chunk + 2 * DIRECT_ALIGN) + (1 << 20) });
}

/** Runs `fn` with a reader arena made for it (its memory is the garbage collector's once `fn` is done). */
export async function withReaderArena<T>(fn: (arena: Arena) => Promise<T>, opts: PageReaderOptions = {}): Promise<T> {
  const arena = readerArena(opts);
  try {
    return await fn(arena);
  } finally {
    arena.reset();
  }
}

interface Slot {
  data: ArenaRegion;
  bits: ArenaRegion;
  present: Uint8Array;
  /** Pages with data under a clear bitmap bit (scratch of maskToBitmap). */
  stale: Uint8Array;
  pending: Promise<number> | null;
}

function chunkPagesFor(pageSize: number, opts: PageReaderOptions): number {
  // Whole bytes of bitmap per chunk, and at least one page.
  return Math.max(8, Math.floor((opts.chunkBytes ?? DEFAULT_CHUNK) / pageSize / 8) * 8);
}

function slots(arena: Arena, depth: number, chunkBytes: number, chunkPages: number): Slot[] {
  return Array.from({ length: depth }, () => ({
    data: arena.alloc(chunkBytes),
    bits: arena.alloc(chunkPages / 8),
    present: new Uint8Array(chunkPages / 8),
    stale: new Uint8Array(chunkPages / 8),
    pending: null,
  }));
}

/**
 * Positional reads of page areas from an open source: through an O_DIRECT descriptor on the same
 * file (from `source.openDirect`) for aligned reads when asked and possible, else the source's
 * own reads (a compressed save, a snapshot's clusters, a file system refusing O_DIRECT).
 */
export class PageReads {
  /** True when aligned reads are O_DIRECT reads on the calling thread (asked for, and O_DIRECT opened). */
  readonly blocking: boolean;

  private constructor(
    private readonly source: PositionalSource,
    private readonly handle: fsp.FileHandle | null,
    blocking: boolean,
  ) {
    this.blocking = blocking && handle !== null;
  }

  /** Opens the O_DIRECT descriptor when `direct` and the source offers one; `blocking` reads it on the calling thread. */
  static async open(source: PositionalSource, direct: boolean, blocking = false): Promise<PageReads> {
    return new PageReads(source, direct ? ((await source.openDirect?.()) ?? null) : null, blocking);
  }

  /** True when aligned reads bypass the page cache (lengths are then rounded up to DIRECT_ALIGN). */
  get direct(): boolean {
    return this.handle !== null;
  }

  /** Reads up to `len` bytes at `pos` into `into`; O_DIRECT when buffer, position and length are aligned. */
  read(into: Uint8Array, len: number, pos: number): Promise<number> {
    const aligned = pos % DIRECT_ALIGN === 0 && len % DIRECT_ALIGN === 0 && into.byteOffset % DIRECT_ALIGN === 0;
    // The executor runs now: a blocking read is done on return, and its error becomes the rejection.
    if (this.handle && aligned && this.blocking) return new Promise((resolve) => resolve(readAllAtSync(this.handle!.fd, into, len, pos, true)));
    if (this.handle && aligned) return readAllAt(this.handle, into, len, pos, true);
    return this.source.readInto(into.subarray(0, len), pos);
  }

  /** Closes the O_DIRECT descriptor (the source stays open). */
  async close(): Promise<void> {
    await this.handle?.close();
  }
}

/** Options of readMappedPages. */
export interface MappedPageOptions extends PageReaderOptions {
  /**
   * Chunks (first page, page count) for which this returns true are not read: they are produced as
   * zeros. For callers that know a chunk has no set bit and no data in the file (e.g. from FIEMAP).
   */
  skip?: (firstPage: number, pages: number) => boolean;
}

/**
 * Guest-visible content of a mapped-ram block, chunk by chunk. The whole page area is read
 * (holes read as zeros cheaply) so that stale data under clear bits is seen too, except chunks
 * `opts.skip` names. Chunks past the end of the file are not produced: the caller sees fewer
 * pages than the block has.
 */
export async function* readMappedPages(source: PositionalSource, b: MappedPages, arena: Arena, opts: MappedPageOptions = {}): AsyncGenerator<PageChunk, void, undefined> {
  const fileSize = source.size;
  const chunkPages = chunkPagesFor(b.pageSize, opts);
  const chunkBytes = chunkPages * b.pageSize;
  const aligned = b.pagesOffset % DIRECT_ALIGN === 0 && chunkBytes % DIRECT_ALIGN === 0;
  const pages = await PageReads.open(source, (opts.direct ?? true) && aligned, opts.blocking);
  // Without O_DIRECT (a file system refusing it, an unaligned page area) reads stay in flight as usual.
  const blocking = pages.blocking;
  const depth = blocking ? 1 : (opts.depth ?? DEFAULT_DEPTH);
  let turn = performance.now();
  const direct = pages.direct;
  // Reads in flight: one slot more than their number, as the next read is issued before the chunk it
  // follows is scanned. A blocking read overlaps nothing, so it waits until its chunk is consumed and
  // one slot serves: the buffer the kernel zero-fills holes into and the scan reads stays in cache.
  const ring = blocking ? 1 : depth + 1;
  const pool = slots(arena, ring, chunkBytes + DIRECT_ALIGN, chunkPages);
  // Only chunks that start inside the file are read: a hostile used length cannot make this loop long.
  const chunks = Math.min(Math.ceil(b.pages / chunkPages), Math.max(0, Math.ceil((fileSize - b.pagesOffset) / chunkBytes)));
  const pagesOf = (k: number) => Math.min(b.pages - k * chunkPages, chunkPages);
  const read: number[] = [];
  for (let k = 0; k < chunks; k++) if (!opts.skip?.(k * chunkPages, pagesOf(k))) read.push(k);
  // Skipped chunks come as one zero view of up to ZERO_SPAN_CHUNKS chunks: a 256 GiB guest's holes are
  // a few thousand yields. The buffer is only read, so its pages stay the kernel's shared zero page.
  const span = Math.min(ZERO_SPAN_CHUNKS, chunks - read.length);
  const zeros = span > 0 ? { data: new Uint8Array(span * chunkBytes), bits: new Uint8Array((span * chunkPages) / 8) } : null;
  const issue = (j: number) => {
    const k = read[j]!;
    const slot = pool[j % ring]!;
    const pos = b.pagesOffset + k * chunkBytes;
    const len = pagesOf(k) * b.pageSize;
    const want = direct ? Math.ceil(len / DIRECT_ALIGN) * DIRECT_ALIGN : len;
    slot.pending = pos >= fileSize ? Promise.resolve(0) : pages.read(slot.data.view, want, pos).then((n) => Math.min(n, len));
  };
  try {
    for (let j = 0; j < Math.min(depth, read.length); j++) issue(j);
    for (let k = 0, j = 0; k < chunks; k++) {
      const firstPage = k * chunkPages;
      if (read[j] !== k) {
        // This chunk and the skipped ones after it, up to the next chunk read.
        const last = Math.min(k + span, read[j] ?? chunks, chunks) - 1;
        const n = (last - k) * chunkPages + pagesOf(last);
        const bits = zeros!.bits.subarray(0, Math.ceil(n / 8));
        yield { firstPage, pages: n, data: zeros!.data.subarray(0, n * b.pageSize), scanned: bits, present: bits, pagesPastEof: 0 };
        k = last;
        continue;
      }
      const got = await pool[j % ring]!.pending!;
      if (blocking && performance.now() - turn > BLOCKING_TURN_MS) turn = await nextTurn();
      if (!blocking && j + depth < read.length) issue(j + depth);
      yield scanSlot(pool[j % ring]!, got, b, arena, firstPage, pagesOf(k));
      if (blocking && j + 1 < read.length) issue(j + 1);
      j++;
    }
  } finally {
    // Reads still in flight write into arena regions: let them land before the regions are reused.
    await Promise.allSettled(pool.map((s) => s.pending));
    for (const s of pool) {
      s.data.free();
      s.bits.free();
    }
    await pages.close();
  }
}

/** Resolves after a whole turn of the event loop (timers, I/O callbacks); the time then. */
function nextTurn(): Promise<number> {
  // From an I/O callback, a first immediate runs before this iteration's end; the second comes after the next one's timers.
  return new Promise((resolve) => setImmediate(() => setImmediate(() => resolve(performance.now()))));
}

/** The chunk a finished read left in `slot`: bytes the file did not supply read as zeros, scanned and masked. */
function scanSlot(slot: Slot, got: number, b: MappedPages, arena: Arena, firstPage: number, pages: number): PageChunk {
  const len = pages * b.pageSize;
  const data = slot.data.view.subarray(0, len);
  // The region is reused: bytes the file did not supply must read as zeros.
  if (got < len) data.fill(0, got);
  const scanned = slot.bits.view.subarray(0, Math.ceil(pages / 8));
  arena.scan(data, b.pageSize, scanned, 0);
  maskToBitmap(data, b, firstPage, pages, scanned, slot.present, slot.stale);
  const pagesPastEof = pages - Math.min(pages, Math.floor(got / b.pageSize));
  return { firstPage, pages, data, scanned, present: slot.present.subarray(0, scanned.length), pagesPastEof };
}

/** present = scanned AND bitmap; pages with data under a clear bit are zeroed (the guest never sees them). */
function maskToBitmap(data: Uint8Array, b: MappedPages, firstPage: number, pages: number, scanned: Uint8Array, present: Uint8Array, stale: Uint8Array): void {
  const base = firstPage >>> 3;
  let anyStale = 0;
  for (let i = 0; i < scanned.length; i++) {
    const valid = i === scanned.length - 1 && pages & 7 ? (1 << (pages & 7)) - 1 : 0xff;
    const s = scanned[i]! & valid;
    const f = b.bitmap[base + i]! & valid;
    present[i] = s & f;
    anyStale |= stale[i] = s & ~f & 0xff;
  }
  if (anyStale) for (const r of runsIn(stale, 0, pages)) data.fill(0, r.start * b.pageSize, (r.start + r.count) * b.pageSize);
}

/**
 * Guest-visible content of a block gathered page by page through RamBlock.readPages (a plain stream's
 * page records). With `presentOnly`, chunks without a present page are not produced (work bounded
 * by the file, not by the block's declared length).
 */
export async function* gatherPages(block: RamBlock, arena: Arena, opts: ChunkOptions = {}): AsyncGenerator<PageChunk, void, undefined> {
  const chunkPages = chunkPagesFor(block.pageSize, opts);
  const [slot] = slots(arena, 1, chunkPages * block.pageSize, chunkPages);
  try {
    for (const k of opts.presentOnly ? chunksWithPresentPages(block, chunkPages) : allChunks(block.pages, chunkPages)) {
      const firstPage = k * chunkPages;
      const pages = Math.min(block.pages - firstPage, chunkPages);
      const data = slot!.data.view.subarray(0, pages * block.pageSize);
      await block.readPages(data, firstPage, pages);
      const scanned = slot!.bits.view.subarray(0, Math.ceil(pages / 8));
      arena.scan(data, block.pageSize, scanned, 0);
      yield { firstPage, pages, data, scanned, present: scanned, pagesPastEof: 0 };
    }
  } finally {
    slot!.data.free();
    slot!.bits.free();
  }
}

function* allChunks(pages: number, chunkPages: number): Generator<number> {
  for (let k = 0; k * chunkPages < pages; k++) yield k;
}

/** Chunk numbers holding at least one of the block's present pages, in order. */
function* chunksWithPresentPages(block: RamBlock, chunkPages: number): Generator<number> {
  let last = -1;
  for (const run of block.presentRuns()) {
    const end = Math.floor((run.start + run.count - 1) / chunkPages);
    for (let k = Math.max(last + 1, Math.floor(run.start / chunkPages)); k <= end; k++) yield (last = k);
  }
}
