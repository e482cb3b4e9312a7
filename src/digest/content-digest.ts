// The content digest of guest RAM (spec/format.md §12): SHA-256 over the non-zero pages only, so it
// costs O(present pages) and is the same for the same RAM in every encoding (mapped-ram, stream, ...).
import type { Hash } from 'node:crypto';
import { nodeCrypto } from '../io/builtins.js';
import type { Arena } from '../kernel/index.js';
import type { MigrationFile } from '../reader/migration-file.js';
import type { PageChunk, PageReaderOptions } from '../reader/page-reader.js';

// Bytes of small runs gathered per data update, and run records per runs update.
const STAGE_BYTES = 1 << 20;
const RECORDS = 4096;

/** Prefix of the guest-wide content digest's input: names the definition and its version. */
export const CONTENT_DIGEST_MAGIC = 'mram content digest v1\n';

/** Block content digests by idstr, and the guest-wide one combining them. */
export interface ContentDigest {
  /** SHA-256 hex over the blocks' digests in idstr byte order (the value `verify --content-digest` prints). */
  digest: string;
  /** idstr → SHA-256 hex of the block's record (id, used length, page size, non-zero pages). */
  blocks: Record<string, string>;
}

/**
 * Accumulates one RAM block's content digest from its pages, fed in ascending page order. Only
 * pages whose guest-visible content is non-zero count: a zero page stored in the file and one
 * left out are the same RAM.
 */
export class BlockContentHasher {
  private readonly data: Hash = nodeCrypto().createHash('sha256');
  private readonly runs: Hash = nodeCrypto().createHash('sha256');
  // Small runs (a page here and there) are gathered before hashing: an update costs about what
  // hashing a 4 KiB page does, a copy far less.
  private readonly stage = new Uint8Array(STAGE_BYTES);
  private staged = 0;
  private readonly records = Buffer.alloc(RECORDS * 16);
  private recorded = 0;
  private runStart = -1;
  private runEnd = -1;

  constructor(
    readonly id: string,
    readonly usedLength: number,
    readonly pageSize: number,
    /** x-ignore-shared left the block's RAM out of the file. */
    readonly leftOut = false,
  ) {}

  /** Adds pages [firstPage, firstPage+pages) of `data`: bit i of `nonZero` says page firstPage+i is non-zero. */
  add(firstPage: number, pages: number, data: Uint8Array, nonZero: Uint8Array): void {
    const ps = this.pageSize;
    for (let i = 0; i < pages; ) {
      const byte = nonZero[i >>> 3]!;
      // Whole zero bytes of the bitmap (8 zero pages) are skipped without a per-bit test.
      if ((i & 7) === 0 && byte === 0) {
        i += 8;
        continue;
      }
      if (!((byte >>> (i & 7)) & 1)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < pages && (nonZero[j >>> 3]! >>> (j & 7)) & 1) j++;
      this.addBytes(data.subarray(i * ps, j * ps));
      this.extendRun(firstPage + i, firstPage + j);
      i = j;
    }
  }

  /** Adds a chunk as the page readers produce it (its `present` bits are the non-zero guest pages). */
  addChunk(c: PageChunk): void {
    this.add(c.firstPage, c.pages, c.data, c.present);
  }

  /** The block's 32-byte digest; the hasher cannot be used afterwards. */
  finish(): Buffer {
    this.flushRun();
    this.flushStage();
    this.runs.update(this.records.subarray(0, this.recorded * 16));
    const id = Buffer.from(this.id, 'latin1');
    const head = Buffer.alloc(1 + id.length + 13);
    head[0] = id.length;
    id.copy(head, 1);
    head.writeBigUInt64BE(BigInt(this.usedLength), 1 + id.length);
    head.writeUInt32BE(this.pageSize, 9 + id.length);
    head[13 + id.length] = this.leftOut ? 1 : 0;
    const h = nodeCrypto().createHash('sha256').update(head);
    if (!this.leftOut) h.update(this.runs.digest()).update(this.data.digest());
    return h.digest();
  }

  private extendRun(start: number, end: number): void {
    if (start !== this.runEnd) {
      this.flushRun();
      this.runStart = start;
    }
    this.runEnd = end;
  }

  /** Bytes of non-zero pages, in order: large ones hashed at once, small ones through the stage. */
  private addBytes(bytes: Uint8Array): void {
    const large = bytes.length >= this.stage.length / 4;
    // Staged bytes come first: the data hash is over the pages in order.
    if (large || this.staged + bytes.length > this.stage.length) this.flushStage();
    if (large) this.data.update(bytes);
    else {
      this.stage.set(bytes, this.staged);
      this.staged += bytes.length;
    }
  }

  private flushStage(): void {
    if (this.staged > 0) this.data.update(this.stage.subarray(0, this.staged));
    this.staged = 0;
  }

  private flushRun(): void {
    if (this.runStart < 0) return;
    if (this.recorded === RECORDS) {
      this.runs.update(this.records);
      this.recorded = 0;
    }
    this.records.writeBigUInt64BE(BigInt(this.runStart), this.recorded * 16);
    this.records.writeBigUInt64BE(BigInt(this.runEnd - this.runStart), this.recorded * 16 + 8);
    this.recorded++;
    this.runStart = this.runEnd = -1;
  }
}

/** The guest-wide digest from each block's 32-byte digest: SHA-256(magic ‖ digests in idstr byte order). */
export function combineContentDigests(blocks: ReadonlyMap<string, Buffer>): ContentDigest {
  const ids = [...blocks.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
  const h = nodeCrypto().createHash('sha256').update(CONTENT_DIGEST_MAGIC);
  for (const id of ids) h.update(blocks.get(id)!);
  return { digest: h.digest('hex'), blocks: Object.fromEntries(ids.map((id) => [id, blocks.get(id)!.toString('hex')])) };
}

/**
 * Content digest of an opened migration file's RAM: reads only the chunks that hold present pages
 * (mapped-ram page areas with O_DIRECT), so a mostly empty guest costs what it stores, not its size.
 */
export async function contentDigest(file: MigrationFile, arena: Arena, opts: PageReaderOptions = {}): Promise<ContentDigest> {
  const out = new Map<string, Buffer>();
  for (const b of file.blocks) {
    const hasher = new BlockContentHasher(b.id, b.usedLength, b.pageSize, b.ignored);
    if (!b.ignored) for await (const c of b.chunks(arena, { ...opts, presentOnly: true })) hasher.addChunk(c);
    out.set(b.id, hasher.finish());
  }
  return combineContentDigests(out);
}

