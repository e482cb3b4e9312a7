// Native reference for bench/scan.bench.js: AVX2 zero-page scan into a mapped-ram bitmap,
// same algorithm as the wasm kernel's scan() in assembly/scan.ts (first word loaded two pages
// ahead, sample after a non-zero page, then OR-reduce 128 bytes per test), with 256-bit vectors.
// A Node-API addon, so it scans the very bytes the wasm kernel scans (the bench's WebAssembly.Memory):
// a C child on its own buffer streamed 3-5% faster from placement alone (bench/FINDINGS.md).
//   scan(memoryBuffer, ptr, len, bitmapPtr) -> non-zero page count (ptr 32-byte aligned, len a multiple of 4096)
#include <immintrin.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>

#define PAGE 4096

static inline uint64_t ld64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline int page_is_zero(const uint8_t *p, size_t n, uint64_t first, int sample) {
  uint64_t s = first;
  if (sample) s |= ld64(p + n / 2) | ld64(p + n - 8);
  if (s) return 0;
  for (const uint8_t *e = p + n; p < e; p += 128) {
    __m256i a = _mm256_or_si256(
        _mm256_or_si256(_mm256_load_si256((const __m256i *)p), _mm256_load_si256((const __m256i *)(p + 32))),
        _mm256_or_si256(_mm256_load_si256((const __m256i *)(p + 64)), _mm256_load_si256((const __m256i *)(p + 96))));
    if (!_mm256_testz_si256(a, a)) return 0;
  }
  return 1;
}

static __attribute__((noinline)) size_t scan(const uint8_t *buf, size_t len, uint8_t *bitmap) {
  size_t count = 0, pages = len / PAGE;
  memset(bitmap, 0, (pages + 63) / 64 * 8);
  if (!pages) return 0;
  size_t nz = 1;
  // Touch-ahead exactly like the wasm kernel: page i + 2's first word is loaded while page i is
  // scanned (a plain load, as wasm has no prefetch) and is that page's first-word test later.
  const uint8_t *last = buf + len - 8;
  uint64_t f0 = ld64(buf), f1 = ld64(buf + PAGE < last ? buf + PAGE : last);
  for (size_t i = 0; i < pages; i++) {
    uint64_t first = f0;
    const uint8_t *ahead = buf + (i + 2) * PAGE;
    f0 = f1;
    f1 = ld64(ahead < last ? ahead : last);
    // Sample only right after a non-zero page, exactly like the wasm kernel's scan().
    nz = !page_is_zero(buf + i * PAGE, PAGE, first, nz != 0);
    bitmap[i >> 3] |= (uint8_t)(nz << (i & 7));
    count += nz;
  }
  return count;
}

static napi_value Scan(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *base;
  size_t bytes;
  int64_t ptr, len, bitmap;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, 0, 0) != napi_ok || argc != 4 ||
      napi_get_arraybuffer_info(env, argv[0], &base, &bytes) != napi_ok ||
      napi_get_value_int64(env, argv[1], &ptr) != napi_ok || napi_get_value_int64(env, argv[2], &len) != napi_ok ||
      napi_get_value_int64(env, argv[3], &bitmap) != napi_ok || ptr < 0 || len < PAGE || len % PAGE || bitmap < 0 ||
      (size_t)ptr + len > bytes || (size_t)bitmap + (len / PAGE + 63) / 64 * 8 > bytes || ((uintptr_t)base + ptr) % 32) {
    napi_throw_range_error(env, 0, "scan(memoryBuffer, ptr, len, bitmapPtr): range outside the buffer or misaligned");
    return 0;
  }
  napi_create_uint32(env, (uint32_t)scan((const uint8_t *)base + ptr, (size_t)len, (uint8_t *)base + bitmap), &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "scan", NAPI_AUTO_LENGTH, Scan, 0, &fn);
  napi_set_named_property(env, exports, "scan", fn);
  return exports;
}
