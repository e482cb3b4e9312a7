import { Arena, bitmapBytes, checkPageSize, type ScanResult } from './arena.js';
import { bitRuns, type PageRun } from './bit-runs.js';

export { bitmapBytes };

// Staging chunk for data outside any arena: big enough to amortise calls, small enough to stay in L2.
const STAGE_BYTES = 1 << 20;

/** Arena bytes scanPages needs to stage data that lies outside any arena. */
export function stagingBytes(pageSize = 4096): number {
  return Math.max(STAGE_BYTES, pageSize);
}

/**
 * Build the mapped-ram bitmap of `data` (length a multiple of pageSize). Views into an arena's
 * memory are scanned in place; anything else is copied in 1 MiB chunks through `arena` (the
 * caller's, with `stagingBytes(pageSize)` free; default: one made for this call).
 */
export function scanPages(data: Uint8Array, pageSize = 4096, arena?: Arena): ScanResult {
  checkPageSize(pageSize);
  if (data.byteLength % pageSize !== 0) {
    throw new RangeError(`length ${data.byteLength} is not a multiple of the page size ${pageSize}`);
  }
  const owner = Arena.of(data);
  if (owner) return owner.scan(data, pageSize);
  const pages = data.byteLength / pageSize;
  const bitmap = new Uint8Array(bitmapBytes(pages));
  const stager = arena ?? new Arena({ bytes: stagingBytes(pageSize) });
  const stage = stager.alloc(stagingBytes(pageSize));
  try {
    let nonZeroPages = 0;
    for (let off = 0; off < data.byteLength; off += stage.byteLength) {
      const chunk = data.subarray(off, off + stage.byteLength);
      stage.view.set(chunk);
      nonZeroPages += stager.scan(stage.view.subarray(0, chunk.byteLength), pageSize, bitmap, off / pageSize).nonZeroPages;
    }
    return { bitmap, nonZeroPages };
  } finally {
    stage.free();
  }
}

/** Maximal runs of all-zero pages of `data`, in page order (`arena` as for scanPages). */
export function zeroRuns(data: Uint8Array, pageSize = 4096, arena?: Arena): PageRun[] {
  return bitRuns(scanPages(data, pageSize, arena).bitmap, data.byteLength / pageSize, false);
}
