// Page-data checks (zero pages under set bits, stale data, unwritten bitmap, holes, short file) and digests.
import { createHash, type Hash } from 'node:crypto';
import { hex } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import type { Arena } from '../kernel/index.js';
import type { RamBlock } from '../reader/ram-block.js';
import type { PositionalSource } from '../io/source.js';
import type { Findings } from './findings.js';
import type { MappedBlock } from './layout.js';
import { readMappedPages, type PageChunk, type PageReaderOptions } from '../reader/page-reader.js';

export interface ContentOptions extends PageReaderOptions {
  /** Compute a SHA-256 of each block's guest-visible content. */
  digest: boolean;
  /** Called after each chunk with the block bytes done so far and the total. */
  progress?: (done: number, total: number) => void;
}

const name = (s: string) => `"${escapeControl(s)}"`;

/** First page and count of pages matching one condition. */
class PageTally {
  first = -1;
  count = 0;
  add(firstPage: number, bits: number): void {
    if (!bits) return;
    if (this.first < 0) this.first = firstPage + (31 - Math.clz32(bits & -bits));
    let b = bits;
    while (b) {
      b &= b - 1;
      this.count++;
    }
  }
}

export async function checkContent(
  file: PositionalSource,
  /** A lower bound of the allocated bytes the stream metadata takes (whole 4 KiB blocks it covers). */
  metadataBytes: number,
  mapped: MappedBlock[],
  streamBlocks: RamBlock[],
  arena: Arena,
  findings: Findings,
  opts: ContentOptions,
): Promise<Record<string, string>> {
  const digests: Record<string, string> = {};
  const total = mapped.reduce((n, b) => n + b.usedLength, 0) + (opts.digest ? streamBlocks.reduce((n, b) => n + b.usedLength, 0) : 0);
  let done = 0;
  let setPagesInFile = 0;
  let stalePages = 0;
  /** Zero pages under set bits in blocks whose bitmap is not full (a full one means zero-page-detection=none). */
  let suspectZeroSet = 0;
  const step = (hash: Hash | null, c: PageChunk, pageSize: number) => {
    hash?.update(c.data);
    done += c.pages * pageSize;
    opts.progress?.(done, total);
  };

  for (const b of mapped) {
    const zeroSet = new PageTally();
    const stale = new PageTally();
    const missing = new PageTally();
    let set = 0;
    let scanned = 0;
    let covered = 0;
    const hash = opts.digest ? createHash('sha256') : null;
    for await (const c of readMappedPages(file, b, arena, opts)) {
      covered = c.firstPage + c.pages;
      const base = c.firstPage >>> 3;
      const inFile = c.pages - c.pagesPastEof;
      for (let i = 0; i < c.scanned.length; i++) {
        const valid = i === c.scanned.length - 1 && c.pages & 7 ? (1 << (c.pages & 7)) - 1 : 0xff;
        // Pages from `inFile` on are (partly) past the end of the file.
        const lo = i * 8;
        const fileMask = inFile >= lo + 8 ? 0xff : inFile <= lo ? 0 : (1 << (inFile - lo)) - 1;
        const f = b.bitmap[base + i]! & valid;
        const s = c.scanned[i]! & valid;
        set += popcount(f & fileMask);
        scanned += popcount(s);
        zeroSet.add(c.firstPage + lo, f & ~s & fileMask);
        stale.add(c.firstPage + lo, s & ~f);
        missing.add(c.firstPage + lo, f & ~fileMask);
      }
      step(hash, c, b.pageSize);
    }
    // Pages whose chunk starts past the end of the file: only their bits matter (bounded by the bitmap).
    for (let p = covered; p < b.pages; p++) {
      if ((b.bitmap[p >>> 3]! >>> (p & 7)) & 1) missing.add(p, 1);
      else if (b.bitmap[p >>> 3] === 0 && (p & 7) === 0) p += 7;
    }
    const at = (page: number) => b.pagesOffset + page * b.pageSize;
    if (set === 0 && missing.count === 0 && scanned > 0) {
      findings.add('E_BITMAP_NOT_WRITTEN', b.bitmapOffset, `bitmap of block ${name(b.id)} is all zero, but ${scanned} pages of its page area hold data (first at ${hex(at(stale.first))}): the save did not complete`, b.id);
    } else if (stale.count > 0) {
      findings.add('W_STALE_DATA', at(stale.first), `${stale.count} pages of block ${name(b.id)} hold data under clear bits (first: page ${stale.first})`, b.id);
    }
    if (zeroSet.count > 0) {
      findings.add('W_ZERO_PAGE_SET', at(zeroSet.first), `${zeroSet.count} pages of block ${name(b.id)} under set bits are all zero (first: page ${zeroSet.first})`, b.id);
    }
    if (missing.count > 0) {
      findings.add('E_SHORT_FILE', Math.min(file.size, at(missing.first)), `the file ends before ${missing.count} pages of block ${name(b.id)} under set bits (first: page ${missing.first} at ${hex(at(missing.first))})`, b.id);
    }
    setPagesInFile += set * b.pageSize;
    stalePages += stale.count * b.pageSize;
    if (set + missing.count < b.pages) suspectZeroSet += zeroSet.count;
    // Content past the end of the file is unknown: a digest would claim more than the file holds.
    // A header page size other than the target's (E_PAGE_SIZE) makes QEMU load other contents.
    if (hash && covered === b.pages && b.layout.entry.mappedRam?.pageSize === b.pageSize) digests[b.id] = hash.digest('hex');
  }

  // Written pages and metadata occupy disk blocks; fewer allocated bytes than they need means holes.
  const needed = setPagesInFile + stalePages + metadataBytes;
  if (suspectZeroSet > 0 && file.allocated < needed) {
    const pageSize = mapped[0]!.pageSize;
    const holes = Math.min(suspectZeroSet, Math.ceil((needed - file.allocated) / pageSize));
    findings.add('E_HOLE_UNDER_SET_BIT', mapped[0]!.pagesOffset, `only ${file.allocated} bytes are allocated, but pages under set bits, stale pages and metadata need ${needed}: at least ${holes} all-zero pages under set bits are holes (never written)`);
  }

  if (opts.digest) {
    for (const b of streamBlocks) {
      if (b.usedLength > maxStreamDigest(file.size)) {
        findings.add('W_UNCHECKED', b.entry.entryOffset, `no digest of block ${name(b.id)}: it declares ${b.usedLength} bytes, more than a stream of ${file.size} bytes can send (QEMU leaves pages never sent as they are)`, b.id);
        continue;
      }
      const hash = createHash('sha256');
      for await (const c of b.chunks(arena, opts)) step(hash, c, b.pageSize);
      digests[b.id] = hash.digest('hex');
    }
  }
  return digests;
}

/**
 * Largest stream block whose content is hashed: QEMU sends every page at least once, 9 bytes or
 * more a page, so a real stream is larger than 1/512 of its RAM. Beyond that the digest would
 * hash declared zeros without bound.
 */
function maxStreamDigest(fileSize: number): number {
  return fileSize * 512 + 2 ** 30;
}

function popcount(x: number): number {
  let n = 0;
  for (let b = x; b; b &= b - 1) n++;
  return n;
}
