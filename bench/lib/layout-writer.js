// "dd for the mapped-ram layout": a tiny C program (compiled at run time with cc) that writes the
// present pages' bytes at their mapped-ram slots — runs separated by holes, ≤ 1 MiB per pwrite,
// O_DIRECT, one write at a time, fdatasync at the end — i.e. the hardware limit for the file
// mram convert and QEMU write, as opposed to plain dd's one contiguous file.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* layoutdd SRC OUT RUNS PAGES_OFFSET FILE_SIZE: RUNS = binary pairs of uint32 (first page, count). */
int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: layoutdd SRC OUT RUNS PAGES_OFFSET FILE_SIZE\n"); return 64; }
  const size_t CHUNK = 1 << 20, PAGE = 4096;
  int src = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
  FILE *runs = fopen(argv[3], "rb");
  long long base = atoll(argv[4]), size = atoll(argv[5]);
  if (src < 0 || out < 0 || !runs) { perror("open"); return 1; }
  void *buf;
  if (posix_memalign(&buf, 4096, CHUNK)) return 1;
  uint32_t r[2];
  while (fread(r, sizeof r, 1, runs) == 1) {
    size_t left = (size_t)r[1] * PAGE;
    off_t at = base + (off_t)r[0] * PAGE;
    while (left) {
      size_t n = left < CHUNK ? left : CHUNK;
      if (read(src, buf, n) != (ssize_t)n) { perror("read"); return 1; }
      if (pwrite(out, buf, n, at) != (ssize_t)n) { perror("pwrite"); return 1; }
      at += n; left -= n;
    }
  }
  if (ftruncate(out, size) || fdatasync(out)) { perror("sync"); return 1; }
  return 0;
}
`;

/** Compiles the writer into `dir`; returns its path, or null without a C compiler. */
export function buildLayoutWriter(dir) {
  const c = path.join(dir, 'layoutdd.c');
  const exe = path.join(dir, 'layoutdd');
  fs.writeFileSync(c, SOURCE);
  const r = spawnSync('cc', ['-O2', '-o', exe, c], { encoding: 'utf8' });
  return r.status === 0 ? exe : null;
}

/** Writes runs ([firstPage, count] pairs) in the binary form layoutdd reads. */
export function writeRuns(file, runs) {
  const b = Buffer.alloc(runs.length * 8);
  runs.forEach(([s, n], i) => {
    b.writeUInt32LE(s, i * 8);
    b.writeUInt32LE(n, i * 8 + 4);
  });
  fs.writeFileSync(file, b);
}
