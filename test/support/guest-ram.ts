// Deterministic guest RAM content for fixtures, and a tiny boot sector for a "running" guest.
import fs from 'node:fs';

export const PAGE = 4096;

/** splitmix32-style PRNG: deterministic from a 32-bit seed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export type PageKind = 'zero' | 'random' | 'first' | 'last' | 'mid';

export interface GuestRamSummary {
  seed: number;
  memMiB: number;
  pages: number;
  nonZeroPages: number;
  random: number;
  firstByte: number;
  lastByte: number;
  midByte: number;
}

/**
 * Build guest RAM content (memMiB MiB) from `seed`:
 *  - first quarter: runs of random pages, zero pages, pages whose only non-zero byte is the
 *    first byte, pages whose only non-zero byte is the last byte, pages with one byte in the
 *    middle (run lengths random);
 *  - rest: mostly zero, an isolated non-zero page every ~300 pages;
 *  - page 0 and the last page are non-zero (edge cases).
 * Random pages are capped at ~1 per MiB (4 KiB of random data per MiB) so compressed fixtures stay small.
 */
export function makeGuestRam(memMiB: number, seed: number): { buf: Buffer; summary: GuestRamSummary } {
  const pages = (memMiB * 2 ** 20) / PAGE;
  const buf = Buffer.alloc(pages * PAGE);
  const rnd = prng(seed);
  const nz = () => 1 + (rnd() % 255);
  const summary: GuestRamSummary = { seed, memMiB, pages, nonZeroPages: 0, random: 0, firstByte: 0, lastByte: 0, midByte: 0 };
  let randomBudget = Math.max(16, memMiB);

  const put = (p: number, kind: PageKind) => {
    const o = p * PAGE;
    switch (kind) {
      case 'zero':
        return;
      case 'random':
        for (let i = 0; i < PAGE; i += 4) buf.writeUInt32LE(rnd(), o + i);
        buf[o + PAGE - 1] = nz(); // never accidentally all-zero
        summary.random++;
        return;
      case 'first':
        buf[o] = nz();
        summary.firstByte++;
        return;
      case 'last':
        buf[o + PAGE - 1] = nz();
        summary.lastByte++;
        return;
      case 'mid':
        buf[o + 1 + (rnd() % (PAGE - 2))] = nz();
        summary.midByte++;
        return;
    }
  };

  const mixedEnd = Math.floor(pages / 4);
  let p = 0;
  while (p < mixedEnd) {
    const r = rnd() % 100;
    let kind: PageKind;
    let len: number;
    if (r < 50) {
      kind = 'zero';
      len = 1 + (rnd() % 48);
    } else if (r < 62 && randomBudget > 0) {
      kind = 'random';
      len = Math.min(randomBudget, 1 + (rnd() % 4));
      randomBudget -= len;
    } else if (r < 76) {
      kind = 'first';
      len = 1 + (rnd() % 6);
    } else if (r < 90) {
      kind = 'last';
      len = 1 + (rnd() % 6);
    } else {
      kind = 'mid';
      len = 1 + (rnd() % 3);
    }
    for (let i = 0; i < len && p < mixedEnd; i++, p++) put(p, kind);
  }
  // mostly-zero region
  for (p = mixedEnd; p < pages; p += 200 + (rnd() % 200)) {
    const k = rnd() % 3;
    put(p, k === 0 ? 'first' : k === 1 ? 'last' : 'mid');
  }
  // edges
  if (buf.subarray(0, PAGE).every((b) => b === 0)) put(0, 'first');
  if (buf.subarray((pages - 1) * PAGE).every((b) => b === 0)) put(pages - 1, 'last');
  summary.nonZeroPages = nonZeroPages(buf, PAGE);
  return { buf, summary };
}

/** Naive count of pages containing at least one non-zero byte. */
export function nonZeroPages(buf: Uint8Array, pageSize = PAGE): number {
  let n = 0;
  for (let p = 0; p < buf.length; p += pageSize) {
    const end = Math.min(p + pageSize, buf.length);
    for (let i = p; i < end; i++) {
      if (buf[i] !== 0) {
        n++;
        break;
      }
    }
  }
  return n;
}

function blockIsZero(buf: Uint8Array, off: number, len: number): boolean {
  for (let i = off; i < off + len; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Write `buf` to `path` at `offset` keeping zero blocks as holes: the file is truncated to
 * `offset` (bytes before it preserved unless `truncate` is false), extended to offset+length,
 * and only blocks with non-zero bytes are written.
 */
export function writeSparse(path: string, buf: Uint8Array, opts: { offset?: number; block?: number; truncate?: boolean } = {}): void {
  const off = opts.offset ?? 0;
  const block = opts.block ?? PAGE;
  const fd = fs.openSync(path, fs.existsSync(path) ? 'r+' : 'w+');
  try {
    if (opts.truncate !== false) fs.ftruncateSync(fd, off);
    fs.ftruncateSync(fd, Math.max(fs.fstatSync(fd).size, off + buf.length));
    for (let i = 0; i < buf.length; i += block) {
      const len = Math.min(block, buf.length - i);
      if (!blockIsZero(buf, i, len)) {
        // extend runs of non-zero blocks into one write
        let j = i + len;
        while (j < buf.length && !blockIsZero(buf, j, Math.min(block, buf.length - j))) j += Math.min(block, buf.length - j);
        fs.writeSync(fd, buf, i, j - i, off + i);
        i = j - block;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Create a sparse guest RAM file with seeded content; returns the summary. */
export function writeGuestRam(path: string, memMiB: number, seed: number): GuestRamSummary {
  const { buf, summary } = makeGuestRam(memMiB, seed);
  writeSparse(path, buf);
  return summary;
}

/** Apparent and allocated size of a file (allocated from st_blocks, 512-byte units). */
export function fileSizes(path: string): { apparent: number; allocated: number } {
  const st = fs.statSync(path);
  return { apparent: st.size, allocated: st.blocks * 512 };
}

// ---------------------------------------------------------------- running guest

/** Guest-physical range the boot sector keeps incrementing, byte by byte, forever. */
export const DIRTY_RANGE = { start: 0x10000, end: 0xa0000 } as const;

/**
 * 512-byte x86 real-mode boot sector: for (;;) for (a = 0x10000; a < 0xA0000; a++) mem[a]++.
 * Every page of the range is dirtied on each pass and its bytes cycle through 0..255, so pages
 * periodically become all-zero again.
 */
export function dirtierBootSector(): Buffer {
  const code = [
    0xfa, //             cli
    0x31, 0xc0, //       xor ax,ax
    0x8e, 0xd0, //       mov ss,ax
    0xbc, 0x00, 0x7c, // mov sp,0x7c00
    0xba, 0x00, 0x10, // outer: mov dx,0x1000
    0x8e, 0xc2, //       seg:   mov es,dx
    0x31, 0xff, //              xor di,di
    0x26, 0xfe, 0x05, // inner: inc byte [es:di]
    0x47, //                    inc di
    0x75, 0xfa, //              jnz inner
    0x81, 0xc2, 0x00, 0x10, //  add dx,0x1000
    0x81, 0xfa, 0x00, 0xa0, //  cmp dx,0xA000
    0x72, 0xec, //              jb seg
    0xeb, 0xe7, //              jmp outer
  ];
  const b = Buffer.alloc(512);
  Buffer.from(code).copy(b);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

/** Raw disk image (1 MiB, sparse) holding `dirtierBootSector()`. */
export function writeDirtierDisk(path: string): void {
  // SeaBIOS fails to read tiny images ("could not read the boot disk"); 1 MiB works.
  fs.writeFileSync(path, dirtierBootSector());
  fs.truncateSync(path, 1024 * 1024);
}
