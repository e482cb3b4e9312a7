// Reference writers for bench/write-limits.js: the present-page runs of a guest whose every EVERY-th
// page is present, written with exact holes into OUT at BASE (a mapped-ram page area, or 0 for a raw
// image), the file first sized to BASE + BYTES as mram sizes its outputs.
//   runwriter direct    OUT BYTES EVERY BASE  one O_DIRECT pwrite per run (1 MiB at most)
//   runwriter sfr       OUT BYTES EVERY BASE  buffered pwrite; per 64 MiB window: start its writeback
//                                             (sync_file_range WRITE), then wait for the previous
//                                             window and drop it (posix_fadvise DONTNEED)
//   runwriter fdatasync OUT BYTES EVERY BASE  buffered pwrite; per 64 MiB window: fdatasync, then
//                                             posix_fadvise DONTNEED of the window (mram's scheme)
// Prints one JSON line with the seconds from open to close (fdatasync included).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_RUN (1 << 20)
#define WINDOW ((off_t)64 << 20)

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

enum mode { DIRECT, SFR, FDATASYNC };

// Waits for the writeback of [from, to) and drops it from the page cache.
static void settle(int fd, enum mode m, off_t from, off_t to) {
  if (to <= from) return;
  if (m == FDATASYNC ? fdatasync(fd) : sync_file_range(fd, from, to - from, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)) die("sync");
  if (posix_fadvise(fd, from, to - from, POSIX_FADV_DONTNEED)) die("posix_fadvise");
}

int main(int argc, char **argv) {
  enum mode m = argc != 6 ? -1 : !strcmp(argv[1], "direct") ? DIRECT : !strcmp(argv[1], "sfr") ? SFR : !strcmp(argv[1], "fdatasync") ? FDATASYNC : -1;
  if ((int)m < 0) {
    fprintf(stderr, "usage: runwriter direct|sfr|fdatasync OUT BYTES EVERY BASE\n");
    return 64;
  }
  off_t bytes = strtoll(argv[3], NULL, 0), base = strtoll(argv[5], NULL, 0);
  long every = strtol(argv[4], NULL, 0);
  uint8_t *buf;
  if (posix_memalign((void **)&buf, PAGE, MAX_RUN)) die("posix_memalign");
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < MAX_RUN; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    memcpy(buf + i, &x, 8);
  }
  double t0 = now();
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | (m == DIRECT ? O_DIRECT : 0), 0644);
  if (fd < 0) die("open");
  if (ftruncate(fd, base + bytes)) die("ftruncate");
  off_t pages = bytes / PAGE, kicked = base, settled = base;
  for (off_t p = 0; p < pages;) {
    // A run: one page when pages alternate, up to 1 MiB when every page is present.
    off_t run = every == 1 ? (pages - p < MAX_RUN / PAGE ? pages - p : MAX_RUN / PAGE) : 1;
    off_t at = base + p * PAGE;
    if (pwrite(fd, buf, run * PAGE, at) != run * PAGE) die("pwrite");
    p += every == 1 ? run : every;
    off_t end = base + p * PAGE;
    if (m == FDATASYNC && end - settled >= WINDOW) {
      settle(fd, m, settled, end);
      settled = end;
    } else if (m == SFR && end - kicked >= WINDOW) {
      settle(fd, m, settled, kicked);
      settled = kicked;
      if (sync_file_range(fd, kicked, end - kicked, SYNC_FILE_RANGE_WRITE)) die("sync_file_range");
      kicked = end;
    }
  }
  if (fdatasync(fd)) die("fdatasync");
  if (m != DIRECT) settle(fd, m, settled, base + bytes);
  if (close(fd)) die("close");
  printf("{\"mode\":\"%s\",\"seconds\":%.6f}\n", argv[1], now() - t0);
  return 0;
}
