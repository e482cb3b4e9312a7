// Page-data checks (zero pages under set bits, stale data, unwritten bitmap, holes, short file) and digests.
import type { Hash } from 'node:crypto';
import { hex } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import type { Arena } from '../kernel/index.js';
import type { RamBlock } from '../reader/ram-block.js';
import type { PositionalSource } from '../io/source.js';
import type { Findings } from './findings.js';
import type { MappedBlock } from './layout.js';
import { readMappedPages, type PageChunk, type PageReaderOptions } from '../reader/page-reader.js';
import { BlockContentHasher } from '../digest/content-digest.js';
import { hasSetBit } from '../kernel/bit-runs.js';
import { nodeCrypto } from '../io/builtins.js';
import { overlapsAny, type ByteRange } from '../io/extents.js';

/** What checkContent computes besides its findings, and how it reads. */
export interface ContentOptions extends PageReaderOptions {
  /** Compute a SHA-256 of each block's guest-visible content. */
  digest: boolean;
  /** Compute the content digest (non-zero pages only; spec §12). */
  contentDigest?: boolean;
  /**
   * Allocated byte ranges of the file (FIEMAP), or null when unknown. Page-area chunks without a
   * set bit and outside them are not read: they hold no data, stale or otherwise.
   */
  dataRanges?: readonly ByteRange[] | null;
  /** Called after each chunk with the block bytes done so far and the total. */
  progress?: (done: number, total: number) => void;
}

/** What checkContent computed besides its findings. */
export interface ContentResult {
  /** Block idstr → SHA-256 hex of its guest-visible RAM (with `digest`). */
  digests: Record<string, string>;
  /** Block idstr → 32-byte content digest (with `contentDigest`) of every block whose RAM is all known. */
  contentBlocks: Map<string, Buffer>;
}

const name = (s: string) => `"${escapeControl(s)}"`;
// Zeros per hash update: large enough that the call costs nothing next to SHA-256 itself.
const ZERO_UPDATE = 4 << 20;

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

/** Per-block results of the pass over a mapped-ram page area. */
interface MappedPass {
  zeroSet: PageTally;
  stale: PageTally;
  missing: PageTally;
  /** Set bits of pages inside the file, and non-zero pages seen. */
  set: number;
  scanned: number;
  /** Pages the chunks read covered (the rest start past the end of the file). */
  covered: number;
}

/** Shared state of one checkContent call: hashing and progress. */
class ContentRun {
  done = 0;
  readonly digests: Record<string, string> = {};
  readonly blockDigests = new Map<string, Buffer>();
  constructor(
    readonly total: number,
    readonly opts: ContentOptions,
  ) {}
  step(hash: Hash | null, content: BlockContentHasher | null, c: PageChunk, pageSize: number): void {
    hash?.update(c.data);
    content?.addChunk(c);
    this.done += c.pages * pageSize;
    this.opts.progress?.(this.done, this.total);
  }
}

/** The page-content checks of every block (holes, stale data, zero pages under set bits) and the digests asked for. */
export async function checkContent(
  file: PositionalSource,
  /** A lower bound of the allocated bytes the stream metadata takes (whole 4 KiB blocks it covers). */
  metadataBytes: number,
  mapped: MappedBlock[],
  streamBlocks: RamBlock[],
  arena: Arena,
  findings: Findings,
  opts: ContentOptions,
): Promise<ContentResult> {
  const total = mapped.reduce((n, b) => n + b.usedLength, 0) + (opts.digest || opts.contentDigest ? streamBlocks.reduce((n, b) => n + b.usedLength, 0) : 0);
  const run = new ContentRun(total, opts);
  let setPagesInFile = 0;
  let stalePages = 0;
  /** Zero pages under set bits in blocks whose bitmap is not full (a full one means zero-page-detection=none). */
  let suspectZeroSet = 0;
  for (const b of mapped) {
    const p = await passMapped(file, b, arena, run);
    reportMapped(file, b, p, findings);
    setPagesInFile += p.set * b.pageSize;
    stalePages += p.stale.count * b.pageSize;
    if (p.set + p.missing.count < b.pages) suspectZeroSet += p.zeroSet.count;
  }

  // Written pages and metadata occupy disk blocks; fewer allocated bytes than they need means holes.
  const needed = setPagesInFile + stalePages + metadataBytes;
  if (suspectZeroSet > 0 && file.allocated < needed) {
    const pageSize = mapped[0]!.pageSize;
    const holes = Math.min(suspectZeroSet, Math.ceil((needed - file.allocated) / pageSize));
    findings.add('E_HOLE_UNDER_SET_BIT', mapped[0]!.pagesOffset, `only ${file.allocated} bytes are allocated, but pages under set bits, stale pages and metadata need ${needed}: at least ${holes} all-zero pages under set bits are holes (never written)`);
  }
  for (const b of streamBlocks) await passStream(file, b, arena, findings, run);
  return { digests: run.digests, contentBlocks: run.blockDigests };
}

/** Reads one mapped-ram page area (skipping chunks that hold nothing), tallying, hashing and digesting. */
async function passMapped(file: PositionalSource, b: MappedBlock, arena: Arena, run: ContentRun): Promise<MappedPass> {
  const p: MappedPass = { zeroSet: new PageTally(), stale: new PageTally(), missing: new PageTally(), set: 0, scanned: 0, covered: 0 };
  const hash = run.opts.digest ? nodeCrypto().createHash('sha256') : null;
  const content = run.opts.contentDigest ? new BlockContentHasher(b.id, b.usedLength, b.pageSize) : null;
  const ranges = run.opts.dataRanges;
  const at = (page: number) => b.pagesOffset + page * b.pageSize;
  const skip = ranges ? (first: number, n: number) => !hasSetBit(b.bitmap, first, n) && !overlapsAny(ranges, at(first), at(first + n)) : undefined;
  for await (const c of readMappedPages(file, b, arena, { ...run.opts, skip })) {
    p.covered = c.firstPage + c.pages;
    const base = c.firstPage >>> 3;
    const inFile = c.pages - c.pagesPastEof;
    // Chunks without a set bit or a non-zero page (all of a sparse guest's holes) tally nothing.
    if (!c.pagesPastEof && !anyByte(c.scanned) && !hasSetBit(b.bitmap, c.firstPage, c.pages)) {
      run.step(hash, content, c, b.pageSize);
      continue;
    }
    for (let i = 0; i < c.scanned.length; i++) {
      const valid = i === c.scanned.length - 1 && c.pages & 7 ? (1 << (c.pages & 7)) - 1 : 0xff;
      // Pages from `inFile` on are (partly) past the end of the file.
      const lo = i * 8;
      const fileMask = inFile >= lo + 8 ? 0xff : inFile <= lo ? 0 : (1 << (inFile - lo)) - 1;
      const f = b.bitmap[base + i]! & valid;
      const s = c.scanned[i]! & valid;
      if ((f | s) === 0) continue;
      p.set += popcount(f & fileMask);
      p.scanned += popcount(s);
      p.zeroSet.add(c.firstPage + lo, f & ~s & fileMask);
      p.stale.add(c.firstPage + lo, s & ~f);
      p.missing.add(c.firstPage + lo, f & ~fileMask);
    }
    run.step(hash, content, c, b.pageSize);
  }
  // Pages whose chunk starts past the end of the file: only their bits matter (bounded by the bitmap).
  for (let q = p.covered; q < b.pages; q++) {
    if ((b.bitmap[q >>> 3]! >>> (q & 7)) & 1) p.missing.add(q, 1);
    else if (b.bitmap[q >>> 3] === 0 && (q & 7) === 0) q += 7;
  }
  // Content past the end of the file is unknown: a digest would claim more than the file holds.
  // A header page size other than the target's (E_PAGE_SIZE) makes QEMU load other contents.
  const whole = p.covered === b.pages && b.layout.entry.mappedRam?.pageSize === b.pageSize;
  if (hash && whole) run.digests[b.id] = hash.digest('hex');
  if (content && whole) run.blockDigests.set(b.id, content.finish());
  return p;
}

/** Findings of one mapped-ram block from its pass. */
function reportMapped(file: PositionalSource, b: MappedBlock, p: MappedPass, findings: Findings): void {
  const at = (page: number) => b.pagesOffset + page * b.pageSize;
  const { zeroSet, stale, missing } = p;
  if (p.set === 0 && missing.count === 0 && p.scanned > 0) {
    findings.add('E_BITMAP_NOT_WRITTEN', b.bitmapOffset, `bitmap of block ${name(b.id)} is all zero, but ${p.scanned} pages of its page area hold data (first at ${hex(at(stale.first))}): the save did not complete`, b.id);
  } else if (stale.count > 0) {
    findings.add('W_STALE_DATA', at(stale.first), `${stale.count} pages of block ${name(b.id)} hold data under clear bits (first: page ${stale.first})`, b.id);
  }
  if (zeroSet.count > 0) {
    findings.add('W_ZERO_PAGE_SET', at(zeroSet.first), `${zeroSet.count} pages of block ${name(b.id)} under set bits are all zero (first: page ${zeroSet.first})`, b.id);
  }
  if (missing.count > 0) {
    findings.add('E_SHORT_FILE', Math.min(file.size, at(missing.first)), `the file ends before ${missing.count} pages of block ${name(b.id)} under set bits (first: page ${missing.first} at ${hex(at(missing.first))})`, b.id);
  }
}

/**
 * Digests of one plain-stream block from the chunks holding present pages: the content digest
 * over those, the full one with the chunks between them hashed from one zero buffer (no reads).
 */
async function passStream(file: PositionalSource, b: RamBlock, arena: Arena, findings: Findings, run: ContentRun): Promise<void> {
  const content = run.opts.contentDigest ? new BlockContentHasher(b.id, b.usedLength, b.pageSize) : null;
  let hash = run.opts.digest ? nodeCrypto().createHash('sha256') : null;
  if (hash && b.usedLength > maxStreamDigest(file.size)) {
    findings.add('W_UNCHECKED', b.entry.entryOffset, `no digest of block ${name(b.id)}: it declares ${b.usedLength} bytes, more than a stream of ${file.size} bytes can send (QEMU leaves pages never sent as they are)`, b.id);
    hash = null;
  }
  if (!hash && !content) return;
  const zeros = hash ? new ZeroHasher(hash, run) : null;
  for await (const c of b.chunks(arena, { ...run.opts, presentOnly: true })) {
    zeros?.upTo(c.firstPage * b.pageSize);
    run.step(hash, content, c, b.pageSize);
    zeros?.skipTo((c.firstPage + c.pages) * b.pageSize);
  }
  zeros?.upTo(b.usedLength);
  if (hash) run.digests[b.id] = hash.digest('hex');
  if (content) run.blockDigests.set(b.id, content.finish());
}

/** Feeds zeros to a hash from one shared buffer, in large updates: absent pages cost hashing only. */
class ZeroHasher {
  private static readonly zero = new Uint8Array(ZERO_UPDATE);
  private at = 0;
  constructor(
    private readonly hash: Hash,
    private readonly run: ContentRun,
  ) {}
  /** Hashes zeros from where the last chunk ended up to byte `end` of the block. */
  upTo(end: number): void {
    while (this.at < end) {
      const n = Math.min(end - this.at, ZERO_UPDATE);
      this.hash.update(ZeroHasher.zero.subarray(0, n));
      this.at += n;
      this.run.done += n;
    }
    this.run.opts.progress?.(this.run.done, this.run.total);
  }
  /** The bytes up to `end` were hashed from real data. */
  skipTo(end: number): void {
    this.at = end;
  }
}

/**
 * Largest stream block whose content is hashed: QEMU sends every page at least once, 9 bytes or
 * more a page, so a real stream is larger than 1/512 of its RAM. Beyond that the digest would
 * hash declared zeros without bound.
 */
function maxStreamDigest(fileSize: number): number {
  return fileSize * 512 + 2 ** 30;
}

function anyByte(bits: Uint8Array): boolean {
  for (let i = 0; i < bits.length; i++) if (bits[i] !== 0) return true;
  return false;
}

function popcount(x: number): number {
  let n = 0;
  for (let b = x; b; b &= b - 1) n++;
  return n;
}
