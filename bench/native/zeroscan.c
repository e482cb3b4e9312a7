// Native reference for bench/scan.bench.js: AVX2 zero-page scan into a mapped-ram bitmap,
// same shape as the wasm kernel and QEMU's buffer_is_zero (sample, then OR-reduce 128 bytes per test).
// Usage: zeroscan <bytes> <density-divisor: 0 = none, 7 = every 7th page, 1 = all> [iterations]
// Prints one JSON line: {"bytes":..,"every":..,"gbps":..,"seconds":..,"nonZeroPages":..,"samples":[seconds per pass]}
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

static inline int page_is_zero(const uint8_t *p, size_t n) {
  if (ld64(p) | ld64(p + n / 2) | ld64(p + n - 8)) return 0;
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
  for (size_t i = 0; i < pages; i++) {
    size_t nz = !page_is_zero(buf + i * PAGE, PAGE);
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

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  size_t bytes = strtoull(argv[1], 0, 10);
  int every = atoi(argv[2]);
  int iters = argc > 3 ? atoi(argv[3]) : 0;
  uint8_t *buf = aligned_alloc(PAGE, bytes);
  uint8_t *bitmap = aligned_alloc(64, (bytes / PAGE + 63) / 64 * 8 + 64);
  memset(buf, 0, bytes);
  // Non-zero pages carry a single byte at the very end: the last place a front-to-back compare looks.
  if (every)
    for (size_t p = 0; p < bytes / PAGE; p += every) buf[(p + 1) * PAGE - 1] = 1;
  if (!iters) iters = bytes <= (64u << 20) ? 2000 : 7;
  size_t count = scan(buf, bytes, bitmap); // warm-up pass
  double *t = malloc(sizeof(double) * iters);
  for (int i = 0; i < iters; i++) {
    double t0 = now();
    count = scan(buf, bytes, bitmap);
    t[i] = now() - t0;
  }
  qsort(t, iters, sizeof(double), cmp);
  double median = t[iters / 2];
  printf("{\"bytes\":%zu,\"every\":%d,\"gbps\":%.3f,\"seconds\":%.9f,\"nonZeroPages\":%zu,\"samples\":[", bytes, every,
         bytes / median / 1e9, median, count);
  for (int i = 0; i < iters; i++) printf(i ? ",%.9f" : "%.9f", t[i]);
  printf("]}\n");
  return 0;
}
