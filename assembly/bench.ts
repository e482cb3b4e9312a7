// Bench-only kernel (build/mram.bench.wasm, `npm run build:wasm:bench`): references that measure
// what the production kernel's choices buy. Never shipped: build/mram.wasm does not contain it.

import { bitmapSpan, inMemory, validPageSize } from './bounds';
import { scan } from './scan';

/** Same contract as scanSimd (assembly/index.ts) using only u64 loads: what SIMD buys. */
export function scanScalar(ptr: usize, len: usize, pageSize: usize, bitmapPtr: usize, firstBit: usize): u32 {
  assert(validPageSize(pageSize) && len % pageSize == 0, 'scanScalar: page size not a power of two >= 64, or len not a multiple of it');
  assert(inMemory(ptr, len), 'scanScalar: pages past the end of memory');
  assert(inMemory(bitmapPtr + (firstBit >>> 3), bitmapSpan(firstBit, len / pageSize)), 'scanScalar: bitmap past the end of memory');
  if (pageSize == 4096) return scan(ptr, len, 4096, bitmapPtr, firstBit, false);
  return scan(ptr, len, pageSize, bitmapPtr, firstBit, false);
}
