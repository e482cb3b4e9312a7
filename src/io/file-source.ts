import { existsSync, fstat, read, promises as fsp, constants as fsc } from 'node:fs';
import { promisify } from 'node:util';
import { openDirect } from './file-io.js';
import type { PositionalSource } from './source.js';

const fstatFd = promisify(fstat);

/** The two calls a source needs, from a FileHandle we own, a descriptor the caller lent us, or a decompressor. */
export interface Reader {
  /** Reads up to `length` bytes at `position` into `into` from `offset`; resolves the count read (0 at the end). */
  read(into: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Releases the underlying file. */
  close(): Promise<void>;
}

/** A regular file read with positional reads; knows its apparent and allocated size. */
export class FileSource implements PositionalSource {
  private constructor(
    private readonly reader: Reader,
    /** The path, or `fd N` for a descriptor passed in. */
    readonly path: string,
    readonly size: number,
    /** Bytes actually allocated on disk (st_blocks * 512): a sparse file is smaller than `size`. */
    readonly allocated: number,
    /** The descriptor reads go through (ours or the caller's), or null behind a decompressor. */
    private readonly fd: number | null,
  ) {}

  /** Opens a path, or reads from an open descriptor (which stays the caller's: close() leaves it open). */
  static async open(file: string | number): Promise<FileSource> {
    if (typeof file === 'number') {
      const st = await fstatFd(file);
      checkRegular(st);
      const reader: Reader = {
        read: (into, offset, length, position) =>
          new Promise((resolve, reject) => read(file, into, offset, length, position, (e, n) => (e ? reject(e) : resolve(n)))),
        close: async () => undefined,
      };
      return new FileSource(reader, `fd ${file}`, st.size, st.blocks * 512, file);
    }
    const handle = await fsp.open(file, fsc.O_RDONLY);
    try {
      const st = await handle.stat();
      checkRegular(st);
      const reader: Reader = {
        read: async (into, offset, length, position) => (await handle.read(into, offset, length, position)).bytesRead,
        close: () => handle.close(),
      };
      return new FileSource(reader, file, st.size, st.blocks * 512, handle.fd);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /**
   * A source over any positional reader, e.g. a compressed save read through its decompressor
   * (`size` is then the decompressed size and `allocated` the compressed file's).
   */
  static fromReader(reader: Reader, path: string, size: number, allocated: number): FileSource {
    return new FileSource(reader, path, size, allocated, null);
  }

  /** Reads up to `into.length` bytes at `position`; returns the count (short only at end of file). */
  async readInto(into: Uint8Array, position: number): Promise<number> {
    let done = 0;
    while (done < into.length) {
      const bytesRead = await this.reader.read(into, done, into.length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  /** A path to this very open file for another process (`/proc/PID/fd/N`), or null for a source without a descriptor. */
  procPath(): string | null {
    return this.fd === null ? null : `/proc/${process.pid}/fd/${this.fd}`;
  }

  /**
   * The same open file again with O_DIRECT, through /proc/self/fd: never another file that took
   * the name meanwhile, and a descriptor passed in works as well as a path.
   */
  async openDirect(): Promise<fsp.FileHandle | null> {
    const link = `/proc/self/fd/${this.fd}`;
    if (this.fd === null || !existsSync(link)) return null;
    try {
      return (await openDirect(link, fsc.O_RDONLY)).handle;
    } catch (e) {
      // A descriptor lent to us for a file we may not open ourselves: read it through the page cache.
      if ((e as NodeJS.ErrnoException).code === 'EACCES' || (e as NodeJS.ErrnoException).code === 'EPERM') return null;
      throw e;
    }
  }

  /** Closes the file (a descriptor passed in stays open: it is the caller's). */
  close(): Promise<void> {
    return this.reader.close();
  }
}

function checkRegular(st: { isFile(): boolean; isBlockDevice(): boolean }): void {
  if (!st.isFile() && !st.isBlockDevice()) {
    throw Object.assign(new Error(`not a regular file (positional reads needed; pipe a plain stream to 'mram convert -' instead)`), { code: 'ENOTREG' });
  }
}
