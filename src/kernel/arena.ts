import { bitRuns, type PageRun } from './bit-runs.js';
import { createMemory, instantiateKernel, MAX_WASM_PAGES, WASM_PAGE, type Kernel, type WasmMemory } from './wasm.js';

/** Bytes of a mapped-ram bitmap for `pages` pages: whole 64-bit words (QEMU's unsigned longs). */
export function bitmapBytes(pages: number): number {
  return Math.ceil(pages / 64) * 8;
}

/** O_DIRECT needs buffer addresses aligned to the logical block size; 4096 covers every common device. */
export const REGION_ALIGN = 4096;

// First wasm page belongs to the kernel: its stack/static data (below heapBase) and scratch space.
const KERNEL_RESERVED = WASM_PAGE;
const SCRATCH_BITMAP = 4096;
// Pages per kernel call when the bitmap lives outside the memory: 1 KiB of bitmap.
const CHUNK_PAGES = 8192;

/** A 4096-aligned slice of an arena's memory. `view` stays valid until freed: the memory never grows. */
export interface ArenaRegion {
  /** Offset in the arena's linear memory (a multiple of 4096). */
  readonly ptr: number;
  readonly byteLength: number;
  /** Uint8Array over the region, directly usable for O_DIRECT reads and writes. */
  readonly view: Uint8Array;
  /** Return the region to its arena; later use of `view` is a use-after-free. */
  free(): void;
}

/** Options of the Arena constructor. */
export interface ArenaOptions {
  /** Usable bytes (rounded up to 64 KiB); default 64 MiB, at most 4 GiB − 128 KiB. */
  bytes?: number;
}

/** A scan's page bitmap (bit set = the page has a non-zero byte) and how many pages are non-zero. */
export interface ScanResult {
  bitmap: Uint8Array;
  nonZeroPages: number;
}

interface Span {
  off: number;
  size: number;
}

// Arena per memory buffer, so scanPages can find the owner of a view and scan it in place.
const owners = new WeakMap<ArrayBufferLike, Arena>();

/** Throws a RangeError unless `pageSize` is a power of two of at least 64 bytes. */
export function checkPageSize(pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize < 64 || (pageSize & (pageSize - 1)) !== 0) {
    throw new RangeError(`page size must be a power of two >= 64, got ${pageSize}`);
  }
}

/**
 * One fixed-size WebAssembly.Memory (initial = maximum, never grown) plus a first-fit
 * allocator of 4096-aligned regions and a kernel instance that scans them in place.
 */
export class Arena {
  readonly memory: WasmMemory;
  readonly kernel: Kernel;
  readonly buffer: ArrayBuffer;
  /** Usable bytes (the memory minus the kernel's reserved page). */
  readonly capacity: number;
  private free_: Span[] = [];
  private generation = 0;

  /** The arena whose memory backs `view`, if any. */
  static of(view: ArrayBufferView): Arena | undefined {
    return owners.get(view.buffer);
  }

  constructor(options: ArenaOptions = {}) {
    const bytes = options.bytes ?? 64 << 20;
    const pages = 1 + Math.ceil(bytes / WASM_PAGE);
    if (!(bytes > 0) || pages > MAX_WASM_PAGES) {
      throw new RangeError(`arena size must be in (0, ${(MAX_WASM_PAGES - 1) * WASM_PAGE}] bytes, got ${bytes}`);
    }
    this.memory = createMemory(pages);
    this.kernel = instantiateKernel(this.memory);
    if (this.kernel.heapBase() > SCRATCH_BITMAP) throw new Error('kernel static data overlaps its scratch space');
    this.buffer = this.memory.buffer;
    this.capacity = (pages - 1) * WASM_PAGE;
    owners.set(this.buffer, this);
    this.reset();
  }

  /** Allocate a zero-filled-at-creation (not re-zeroed) region of at least `bytes`, 4096-aligned. */
  alloc(bytes: number): ArenaRegion {
    const size = Math.max(REGION_ALIGN, Math.ceil(bytes / REGION_ALIGN) * REGION_ALIGN);
    const i = this.free_.findIndex((s) => s.size >= size);
    if (i < 0) throw new RangeError(`arena exhausted: ${bytes} bytes requested, memory is fixed at ${this.capacity} bytes`);
    const span = this.free_[i]!;
    const ptr = span.off;
    if (span.size === size) this.free_.splice(i, 1);
    else this.free_[i] = { off: ptr + size, size: span.size - size };
    const generation = this.generation;
    let live = true;
    return {
      ptr,
      byteLength: bytes,
      view: new Uint8Array(this.buffer, ptr, bytes),
      free: () => {
        // Regions handed out before reset() are already back in the pool.
        if (live && generation === this.generation) this.release(ptr, size);
        live = false;
      },
    };
  }

  /** Free every region at once. */
  reset(): void {
    this.generation++;
    this.free_ = [{ off: KERNEL_RESERVED, size: this.capacity }];
  }

  /**
   * Classify the pages of `target` (a region, or any view into this arena's memory) in place.
   * Bit (firstBit + i) of `bitmapOut` is set iff page i has a non-zero byte; other bits are preserved.
   */
  scan(target: ArenaRegion | Uint8Array, pageSize = 4096, bitmapOut?: Uint8Array, firstBit = 0): ScanResult {
    const { ptr, len } = this.locate(target, pageSize);
    const pages = len / pageSize;
    const bitmap = bitmapOut ?? new Uint8Array(bitmapBytes(pages));
    if (!Number.isInteger(firstBit) || firstBit < 0 || firstBit + pages > bitmap.length * 8) {
      throw new RangeError(`bitmap of ${bitmap.length} bytes cannot hold bits [${firstBit}, ${firstBit + pages})`);
    }
    if (bitmap.buffer === this.buffer) {
      return { bitmap, nonZeroPages: this.kernel.scanSimd(ptr, len, pageSize, bitmap.byteOffset, firstBit) };
    }
    // Bitmap outside the memory: stage its affected bytes through scratch, chunk by chunk.
    const scratch = new Uint8Array(this.buffer, SCRATCH_BITMAP, CHUNK_PAGES / 8 + 1);
    let nonZeroPages = 0;
    for (let done = 0; done < pages; done += CHUNK_PAGES) {
      const n = Math.min(CHUNK_PAGES, pages - done);
      const bit = firstBit + done;
      const b0 = Math.floor(bit / 8);
      const b1 = Math.ceil((bit + n) / 8);
      scratch.set(bitmap.subarray(b0, b1));
      nonZeroPages += this.kernel.scanSimd(ptr + done * pageSize, n * pageSize, pageSize, SCRATCH_BITMAP, bit % 8);
      bitmap.set(scratch.subarray(0, b1 - b0), b0);
    }
    return { bitmap, nonZeroPages };
  }

  /** Maximal runs of all-zero pages of `target`, as page index + page count, in order. */
  zeroRuns(target: ArenaRegion | Uint8Array, pageSize = 4096): PageRun[] {
    const { bitmap } = this.scan(target, pageSize);
    return bitRuns(bitmap, this.locate(target, pageSize).len / pageSize, false);
  }

  private locate(target: ArenaRegion | Uint8Array, pageSize: number): { ptr: number; len: number } {
    checkPageSize(pageSize);
    const view = target instanceof Uint8Array ? target : target.view;
    if (view.buffer !== this.buffer) throw new RangeError('view is not inside this arena');
    if (view.byteOffset < KERNEL_RESERVED) throw new RangeError('view overlaps the kernel reserve');
    if (view.byteLength % pageSize !== 0) {
      throw new RangeError(`length ${view.byteLength} is not a multiple of the page size ${pageSize}`);
    }
    return { ptr: view.byteOffset, len: view.byteLength };
  }

  private release(off: number, size: number): void {
    const spans = this.free_;
    let i = 0;
    while (i < spans.length && spans[i]!.off < off) i++;
    spans.splice(i, 0, { off, size });
    // Coalesce with the right neighbour, then the left one.
    const next = spans[i + 1];
    if (next && off + size === next.off) {
      spans[i]!.size += next.size;
      spans.splice(i + 1, 1);
    }
    const prev = spans[i - 1];
    if (prev && prev.off + prev.size === off) {
      prev.size += spans[i]!.size;
      spans.splice(i, 1);
    }
  }
}
