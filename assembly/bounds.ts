// Bounds predicates for the kernel's entry assertions. The release build (noAssert) drops the
// assertions; the debug build (build/mram.debug.wasm) keeps them, so a caller's bad pointer aborts
// with the message and the assembly/*.ts file and line of the assert instead of reading or writing
// another region of the arena (or trapping without a location at the end of memory).

/** [ptr, ptr + len) lies inside the linear memory. Computed in 64 bits: ptr + len may wrap in 32. */
@inline export function inMemory(ptr: usize, len: u64): bool {
  return <u64>ptr + len <= (<u64>memory.size() << 16);
}

/** Bytes of bitmap holding bits [firstBit, firstBit + nbits), from byte firstBit >> 3. */
@inline export function bitmapSpan(firstBit: usize, nbits: u64): u64 {
  return nbits == 0 ? 0 : (<u64>(firstBit & 7) + nbits + 7) >> 3;
}

/** A page size the scan loop handles: a power of two >= 64. */
@inline export function validPageSize(pageSize: usize): bool {
  return pageSize >= 64 && (pageSize & (pageSize - 1)) == 0;
}
