// What every reader needs from its input: positional reads over a known size.
import type { promises as fsp } from 'node:fs';

/**
 * Bytes addressed by position: a regular file (FileSource) or the VM state of a qcow2 internal
 * snapshot (src/qcow2). Readers, checks and converters take this, so they work on either.
 */
export interface PositionalSource {
  /** For messages: the file's path, `fd N`, or `disk.qcow2 snapshot "name"`. */
  readonly path: string;
  /** Apparent size in bytes. */
  readonly size: number;
  /** Bytes backed by storage (a sparse file or unallocated clusters count less than `size`). */
  readonly allocated: number;
  /** Reads up to `into.length` bytes at `position`; returns the count (short only at the end). */
  readInto(into: Uint8Array, position: number): Promise<number>;
  /**
   * A second descriptor on the same open file with O_DIRECT (the caller closes it), for page
   * areas read past the page cache; null, or absent, when the source cannot (a decompressor, a
   * snapshot's clusters, a file system refusing the flag).
   */
  openDirect?(): Promise<fsp.FileHandle | null>;
  /** Releases what the source holds open. */
  close(): Promise<void>;
}
