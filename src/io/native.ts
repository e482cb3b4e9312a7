// The optional native helper (native/mram-io.c, Node-API, prebuilt for linux-x64 and committed, so
// installing needs no compiler): batches of page writes on libuv's thread pool, without fs.writeSync's
// per-call cost, and the write-back of one range by sync_file_range and posix_fadvise, which Node lacks. Without it (another platform, an
// older libc, MRAM_NATIVE=0) the same work goes through fs.writeSync on the main thread and GNU dd:
// the same bytes on disk, slower.
import { createRequire } from 'node:module';

/** What the helper offers; its errors carry `code` (ENOSPC, ...) as Node's fs errors do. */
export interface NativeIo {
  /**
   * Writes bytes[start, end) at position for each [start, end, position] triple of `runs`, in order,
   * on a thread-pool thread (`bytes` must stay as it is until the promise settles); rejects with the first error.
   */
  pwriteRuns(fd: number, bytes: Uint8Array, runs: Float64Array): Promise<void>;
  /**
   * On a thread-pool thread: writes the range's dirty pages back and waits for them (sync_file_range),
   * then drops them from the page cache; rejects with the first error. Not durable: no metadata, no
   * device cache flush (fdatasync does that).
   */
  writeBack(fd: number, offset: number, length: number): Promise<void>;
}

function load(): NativeIo | null {
  if (process.env.MRAM_NATIVE === '0' || process.platform !== 'linux' || process.arch !== 'x64') return null;
  try {
    const io = createRequire(import.meta.url)('../../prebuilds/linux-x64/mram-io.node') as Partial<NativeIo>;
    // A build from before a function was added is not used at all: one code path or the other.
    return typeof io.pwriteRuns === 'function' && typeof io.writeBack === 'function' ? (io as NativeIo) : null;
  } catch {
    return null;
  }
}

/** The helper, or null where it does not load. A shared library loaded once, not state. */
export const nativeIo: NativeIo | null = load();
