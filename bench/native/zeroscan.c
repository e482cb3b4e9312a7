// Native reference for bench/scan.bench.js: AVX2 zero-page scan into a mapped-ram bitmap,
// same algorithm as the wasm kernel's scan() in assembly/index.ts (first word loaded two pages
// ahead, sample after a non-zero page, then OR-reduce 128 bytes per test), with 256-bit vectors.
// Driven over stdin so the bench can alternate native and wasm passes (robust to load drift):
//   "fill <bytes> <every>"  allocate, zero, make every <every>-th page non-zero (0 = none), warm up
//   "pass <n> 0"            time n full passes; each command answers one JSON line
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
  uint8_t *buf = 0, *bitmap = 0;
  size_t bytes = 0, count = 0;
  char cmd[16];
  unsigned long long a, b;
  setvbuf(stdout, 0, _IOLBF, 0);
  while (scanf("%15s %llu %llu", cmd, &a, &b) == 3) {
    if (!strcmp(cmd, "fill")) {
      free(buf);
      free(bitmap);
      bytes = a;
      buf = aligned_alloc(PAGE, bytes);
      bitmap = aligned_alloc(64, (bytes / PAGE + 63) / 64 * 8 + 64);
      memset(buf, 0, bytes);
      // Non-zero pages carry a single byte at the very end: the last place a front-to-back compare looks.
      if (b)
        for (size_t p = 0; p < bytes / PAGE; p += b) buf[(p + 1) * PAGE - 1] = 1;
      count = scan(buf, bytes, bitmap); // warm-up pass
      printf("{\"nonZeroPages\":%zu}\n", count);
    } else if (!strcmp(cmd, "pass")) {
      double t0 = now();
      for (unsigned long long i = 0; i < a; i++) count = scan(buf, bytes, bitmap);
      printf("{\"seconds\":%.9f,\"nonZeroPages\":%zu}\n", now() - t0, count);
    }
  }
  return 0;
}
