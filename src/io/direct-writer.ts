// The two descriptors of a mapped-ram save, as QEMU keeps them: a buffered one for the main
// stream (headers, bitmaps, device state, vmdesc) and an O_DIRECT one for page areas.
import { childProcess } from './builtins.js';
import { constants as fsc, promises as fsp } from 'node:fs';
import { UsageError } from '../format/errors.js';
import { openDirect, writeAllAt, writeFailure, writeRunsAt, type ByteRuns } from './file-io.js';
import { nativeIo } from './native.js';

/** O_DIRECT for page writes: auto (fall back with a warning), on (fail if refused), off. */
export type DirectIoMode = 'auto' | 'on' | 'off';

/**
 * Runs shorter than this go through the page cache: ext4 runs one file's allocating O_DIRECT
 * writes one at a time, each waiting for the disk, so isolated pages would cost a disk round trip each.
 */
export const SCATTERED_RUN = 256 << 10;

/** True for a run ([start, end) bytes) that an O_DIRECT page-area file writes through the page cache. */
export function isScattered([start, end]: readonly [number, number]): boolean {
  return end - start < SCATTERED_RUN;
}
/** Buffered bytes written back and dropped from the page cache at a time. */
const WRITEBACK_WINDOW = 32 << 20;
/**
 * Write-backs in flight while the next window fills; a full window waits for the oldest, so the
 * page cache holds at most this many windows plus the one filling (128 MiB). Measured best of
 * 1–3 in flight and 32/64 MiB windows (bench/FINDINGS.md).
 */
const WRITEBACKS_IN_FLIGHT = 3;

/** Bytes [start, end) of a file. */
type Span = [number, number];

/**
 * Drops the file's clean pages from the page cache without the native helper (whose writeBack
 * drops each window itself): the whole file's with GNU dd, as its manual documents, since Node
 * has no posix_fadvise. Best effort: the pages are clean and reclaimable anyway.
 */
function dropCacheWithDd(path: string): Promise<void> {
  return new Promise((resolve) => {
    childProcess().execFile('dd', ['if=/dev/null', `of=${path}`, 'oflag=nocache', 'conv=notrunc', 'count=0', 'status=none'], () => resolve());
  });
}

/**
 * Page-area descriptor: O_DIRECT when the filesystem allows it, else (auto/off) buffered. With
 * O_DIRECT, short runs go through a buffered twin that is written back and dropped from the page
 * cache every 32 MiB (at most 128 MiB cached) and at sync: exact holes, disk speed, no cache left behind.
 */
export class PageAreaFile {
  private probe: Promise<void> | null = null;
  private cached: Promise<fsp.FileHandle> | null = null;
  private windowBytes = 0;
  // The file span [windowStart, windowEnd) the filling window's writes fall in (runs arrive in file order, but need not).
  private windowStart = Infinity;
  private windowEnd = 0;
  private writeBacks: Promise<void>[] = [];
  // The batch of runs in flight (never rejects): the next one starts when it is done.
  private batch: Promise<void> = Promise.resolve();
  // Page writes not yet settled. close() waits for them: the native helper writes to the raw
  // descriptor on the thread pool, which FileHandle.close() cannot see, and a closed descriptor's
  // number goes to the next file opened.
  private readonly writes = new Set<Promise<void>>();
  private closing = false;
  // The first failed write-back: thrown by the next page write or sync, never lost.
  private failure: unknown = null;
  bytesWritten = 0;

  private constructor(
    private handle: fsp.FileHandle,
    readonly path: string,
    private directNow: boolean,
    private readonly mode: DirectIoMode,
    private readonly warn: (msg: string) => void,
    /** What messages call the file: the target a temporary file becomes. */
    readonly name: string,
  ) {}

  /** Opens an existing file for positioned page writes; messages call it `name` (default: `path`). */
  static async open(path: string, mode: DirectIoMode, warn: (msg: string) => void, name = path): Promise<PageAreaFile> {
    const buffered = async () => new PageAreaFile(await fsp.open(path, fsc.O_WRONLY), path, false, mode, warn, name);
    if (mode === 'off') return buffered();
    const { handle, refused } = await openDirect(path, fsc.O_WRONLY);
    if (handle) return new PageAreaFile(handle, path, true, mode, warn, name);
    const why = refused ?? 'no O_DIRECT on this system';
    if (mode === 'on') throw new UsageError(`--direct-io on: the filesystem of ${name} refuses O_DIRECT (${why} on open)`);
    warn(`the filesystem of ${name} refuses O_DIRECT (${why} on open); writing pages through the page cache (buffered)`);
    return buffered();
  }

  /** True while page writes bypass the page cache. */
  get direct(): boolean {
    return this.directNow;
  }

  /**
   * Writes all of `data` at `position`. With O_DIRECT, data must sit in aligned (arena) memory and
   * position/length be multiples of the block size. The first write runs alone: it is the probe.
   */
  write(data: Uint8Array, position: number): Promise<void> {
    return this.tracked(() => this.put(data, position));
  }

  private async put(data: Uint8Array, position: number): Promise<void> {
    if (this.directNow && data.length < SCATTERED_RUN) return this.writeScattered(data, [[0, data.length]], position);
    if (this.probe === null) {
      this.probe = this.firstWrite(data, position);
      return this.probe;
    }
    await this.probe;
    await this.writeAll(data, position);
  }

  /**
   * Writes each run of `data` ([start, end) of it, disjoint) at `position + start`. Runs shorter than
   * SCATTERED_RUN go through the page cache as one batch (on the thread pool with the native helper,
   * so the caller's thread stays free); longer ones are O_DIRECT writes as with `write`. `data` must
   * stay as it is until this settles.
   */
  writeRuns(data: Uint8Array, runs: ByteRuns, position: number): Promise<void> {
    return this.tracked(() => this.putRuns(data, runs, position));
  }

  private async putRuns(data: Uint8Array, runs: ByteRuns, position: number): Promise<void> {
    if (!this.directNow) {
      // A refused O_DIRECT probe reopens the descriptor buffered: wait for it.
      await this.probe;
      await this.inTurn(this.handle.fd, data, runs, position);
      for (const [start, end] of runs) this.bytesWritten += end - start;
      return;
    }
    const whole = runs.filter((r) => !isScattered(r));
    const scattered = whole.length === 0 ? runs : runs.filter(isScattered);
    await Promise.all([this.writeScattered(data, scattered, position), ...whole.map(([start, end]) => this.put(data.subarray(start, end), position + start))]);
  }

  /** Runs a page write, known to close() until it settles; refused once the file is closing. */
  private tracked(write: () => Promise<void>): Promise<void> {
    if (this.closing) return Promise.reject(new Error(`writing ${this.name}: the page-area file is closed`));
    const p = write();
    this.writes.add(p);
    const done = () => void this.writes.delete(p);
    p.then(done, done);
    return p;
  }

  private async firstWrite(data: Uint8Array, position: number): Promise<void> {
    try {
      await this.writeAll(data, position);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!this.directNow || code !== 'EINVAL') throw e;
      if (this.mode === 'on') throw new UsageError(`--direct-io on: the filesystem of ${this.name} refuses O_DIRECT writes (EINVAL)`);
      this.warn(`the filesystem of ${this.name} refuses O_DIRECT writes (EINVAL); writing pages through the page cache (buffered)`);
      await this.handle.close();
      this.handle = await fsp.open(this.path, fsc.O_WRONLY);
      this.directNow = false;
      await this.writeAll(data, position);
    }
  }

  private async writeAll(data: Uint8Array, position: number): Promise<void> {
    // EINVAL is the O_DIRECT probe's business; everything else is final.
    await writeAllAt(this.handle, data, position, this.name, (e) => (e as NodeJS.ErrnoException).code === 'EINVAL');
    this.bytesWritten += data.length;
  }

  private async writeScattered(data: Uint8Array, runs: ByteRuns, position: number): Promise<void> {
    if (runs.length === 0) return;
    // Opened once even with several writes in flight (the stager queues them).
    this.cached ??= fsp.open(this.path, fsc.O_WRONLY);
    const fd = (await this.cached).fd;
    if (this.failure) throw this.failure;
    await this.inTurn(fd, data, runs, position);
    // Counted once written: a window's write-back covers only pages already in the page cache.
    for (const [start, end] of runs) {
      this.bytesWritten += end - start;
      this.windowBytes += end - start;
      this.windowStart = Math.min(this.windowStart, position + start);
      this.windowEnd = Math.max(this.windowEnd, position + end);
    }
    if (this.windowBytes < WRITEBACK_WINDOW) return;
    while (this.writeBacks.length >= WRITEBACKS_IN_FLIGHT) await this.writeBacks[0];
    // Another queued write may have started this window's write-back while this one waited.
    if (this.windowBytes < WRITEBACK_WINDOW) return;
    const span = this.nextWindow();
    const done: Promise<void> = this.writeBack(span)
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => this.writeBacks.splice(this.writeBacks.indexOf(done), 1));
    this.writeBacks.push(done);
  }

  /** Writes a batch of runs once the batch before it is done: buffered writes to one file take its inode lock, so batches in parallel only contend. */
  private inTurn(fd: number, data: Uint8Array, runs: ByteRuns, position: number): Promise<void> {
    const mine = this.batch.then(() => writeRunsAt(fd, data, runs, position, this.name));
    this.batch = mine.catch(() => undefined);
    return mine;
  }

  /** Waits for the write-backs in flight; throws the first that failed. */
  private async settle(): Promise<void> {
    while (this.writeBacks.length > 0) await this.writeBacks[0];
    if (this.failure) throw this.failure;
  }

  /** Closes the filling window: its span, and a fresh window. */
  private nextWindow(): Span {
    const span: Span = [this.windowStart, this.windowEnd];
    this.windowBytes = 0;
    this.windowStart = Infinity;
    this.windowEnd = 0;
    return span;
  }

  /**
   * Writes the buffered twin's pages back, then drops the span's from the page cache: that span
   * alone with the native helper (sync_file_range, as the C `sfr` writer in bench/ does), else the
   * whole file's (fdatasync), which also starts on the window still filling and contends with its writes.
   */
  private async writeBack(span: Span): Promise<void> {
    if (!this.cached || span[1] === 0) return;
    const cached = await this.cached;
    const written = nativeIo ? nativeIo.writeBack(cached.fd, span[0], span[1] - span[0]) : cached.datasync();
    await written.catch((e) => {
      throw writeFailure(e, this.name);
    });
    if (!nativeIo) await dropCacheWithDd(this.path);
  }

  /** Makes the written pages durable (fdatasync), leaving none of them in the page cache. */
  async sync(): Promise<void> {
    await this.settle();
    // Tracked as page writes are: the helper writes the window back on the raw descriptor.
    await this.tracked(() => this.writeBack(this.nextWindow()));
    await this.handle.datasync().catch((e) => {
      throw writeFailure(e, this.name);
    });
  }

  /** Closes the descriptors. */
  async close(): Promise<void> {
    // Writes and write-backs still in flight (a failed command) must not outlive their descriptor.
    this.closing = true;
    await Promise.allSettled(this.writes);
    await this.settle().catch(() => undefined);
    try {
      await (await this.cached)?.close();
    } finally {
      await this.handle.close();
    }
  }
}

const MAIN_BUFFER = 1 << 20;
const PREFIX_CHUNK = 1 << 20;

/** Copies `source`'s bytes [0, end) (fewer if it is shorter; all-zero chunks stay holes) into `dest`. */
async function copyPrefix(source: string, dest: fsp.FileHandle, end: number, destName: string): Promise<void> {
  // O_NONBLOCK: a FIFO under the target's name must not hang us (only regular files are copied).
  const src = await fsp.open(source, fsc.O_RDONLY | fsc.O_NONBLOCK).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (!src) return;
  try {
    if (!(await src.stat()).isFile()) return;
    const buf = Buffer.alloc(Math.min(end, PREFIX_CHUNK));
    const zero = Buffer.alloc(buf.length);
    for (let at = 0; at < end; ) {
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, end - at), at);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      if (!chunk.equals(zero.subarray(0, bytesRead))) await writeAllAt(dest, chunk, at, destName);
      at += bytesRead;
    }
  } finally {
    await src.close();
  }
}

/** Buffered sequential writer for the main stream, with seeks (to jump over page areas) and positioned writes. */
export class MainStreamFile {
  private buf = new Uint8Array(MAIN_BUFFER);
  private used = 0;
  private bufAt: number;
  bytesWritten = 0;

  private constructor(
    private readonly handle: fsp.FileHandle,
    readonly path: string,
    position: number,
    /** What messages call the file: the target a temporary file becomes. */
    readonly name: string,
  ) {
    this.bufAt = position;
  }

  /**
   * Opens an existing file; the stream starts at `position`. When `path` is the temporary file
   * that replaces `target` (an existing file, with --force), the target's bytes [0, position) are
   * copied first: QEMU's file:PATH,offset=N keeps them too (it opens without O_TRUNC and
   * ftruncates to N), so a header a tool wrote there (libvirt's) survives. Messages call the file
   * `target` when given, else `path`.
   */
  static async open(path: string, position: number, target?: string): Promise<MainStreamFile> {
    const handle = await fsp.open(path, fsc.O_WRONLY);
    const name = target ?? path;
    try {
      if (position > 0 && target !== undefined) await copyPrefix(target, handle, position, name);
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
    return new MainStreamFile(handle, path, position, name);
  }

  /** Absolute offset of the next byte `write` appends. */
  get position(): number {
    return this.bufAt + this.used;
  }

  /** Appends `bytes` to the stream (buffered). */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.used + bytes.length > this.buf.length) await this.flush();
    if (bytes.length > this.buf.length) {
      await this.pwrite(bytes, this.bufAt);
      this.bufAt += bytes.length;
      return;
    }
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  /** Moves the append position (over a page area). */
  async seek(position: number): Promise<void> {
    await this.flush();
    this.bufAt = position;
  }

  /**
   * Grows the file to `size` bytes (never shrinks it), so page writes below the end of file do not
   * extend it (no i_size update per O_DIRECT write on ext4; measured no faster, see spec §9).
   */
  async reserve(size: number): Promise<void> {
    if ((await this.handle.stat()).size >= size) return;
    await this.handle.truncate(size).catch((e) => {
      throw writeFailure(e, this.name);
    });
  }

  /** Writes at an absolute offset without moving the append position (bitmaps). */
  async pwrite(bytes: Uint8Array, position: number): Promise<void> {
    await writeAllAt(this.handle, bytes, position, this.name);
    this.bytesWritten += bytes.length;
  }

  /** Writes the buffered bytes out. */
  async flush(): Promise<void> {
    if (this.used === 0) return;
    await this.pwrite(this.buf.subarray(0, this.used), this.bufAt);
    this.bufAt += this.used;
    this.used = 0;
  }

  /** Flushes, then makes the file durable (fdatasync). */
  async sync(): Promise<void> {
    await this.flush();
    await this.handle.datasync().catch((e) => {
      throw writeFailure(e, this.name);
    });
  }

  /** Closes the descriptor (unflushed bytes are dropped). */
  close(): Promise<void> {
    return this.handle.close();
  }
}
