import { promises as fsp, constants as fsc } from 'node:fs';

/** A regular file read with positional reads; knows its apparent and allocated size. */
export class FileSource {
  private constructor(
    readonly handle: fsp.FileHandle,
    readonly path: string,
    readonly size: number,
    /** Bytes actually allocated on disk (st_blocks * 512): a sparse file is smaller than `size`. */
    readonly allocated: number,
  ) {}

  static async open(path: string, opts: { direct?: boolean } = {}): Promise<FileSource> {
    const flags = fsc.O_RDONLY | (opts.direct ? fsc.O_DIRECT : 0);
    const handle = await fsp.open(path, flags);
    try {
      const st = await handle.stat();
      if (!st.isFile() && !st.isBlockDevice()) throw new Error(`${path}: not a regular file`);
      return new FileSource(handle, path, st.size, st.blocks * 512);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** Reads up to `into.length` bytes at `position`; returns the count (short only at end of file). */
  async readInto(into: Uint8Array, position: number): Promise<number> {
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await this.handle.read(into, done, into.length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
