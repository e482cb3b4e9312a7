// Positional reads and writes that finish what they start, and O_DIRECT opens that fall back
// only where the file system refuses the flag: shared by readers, writers and converters.
import fs, { constants as fsc, promises as fsp } from 'node:fs';
import { nativeIo } from './native.js';

/** Alignment O_DIRECT needs for file offsets, lengths and buffer addresses. */
export const DIRECT_ALIGN = 4096;

/** Names the file in an errno failure (ENOSPC, EIO...), keeping the code for callers that test it. */
export function writeFailure(e: unknown, name: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.code !== 'string' || err.message.startsWith('writing ')) return e;
  return Object.assign(new Error(`writing ${name}: ${err.message}`), { code: err.code });
}

/**
 * Writes all of `bytes` at `position` (a short write continues where it stopped; a write of no
 * bytes is an EIO failure rather than a loop). Failures name `name`, except those `passThrough`
 * keeps as they are (the O_DIRECT probe's EINVAL).
 */
export async function writeAllAt(handle: fsp.FileHandle, bytes: Uint8Array, position: number, name: string, passThrough?: (e: unknown) => boolean): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done).catch((e) => {
      throw passThrough?.(e) ? e : writeFailure(e, name);
    });
    if (bytesWritten === 0) throw Object.assign(new Error(`writing ${name}: short write at offset ${position + done}`), { code: 'EIO' });
    done += bytesWritten;
  }
}

/** Byte ranges [start, end) of a buffer, each written at `position + start`. */
export type ByteRuns = ReadonlyArray<readonly [number, number]>;

/**
 * Writes each run of `bytes` ([start, end) of it) at `position + start` through a buffered
 * descriptor: one batch on the thread pool through the native helper (`bytes` must not change until
 * it settles), else one synchronous write per run. Failures name `name`.
 */
export async function writeRunsAt(fd: number, bytes: Uint8Array, runs: ByteRuns, position: number, name: string): Promise<void> {
  if (!nativeIo) {
    for (const [start, end] of runs) writeAllAtSync(fd, bytes.subarray(start, end), position + start, name);
    return;
  }
  const triples = new Float64Array(runs.length * 3);
  for (let i = 0; i < runs.length; i++) {
    const [start, end] = runs[i]!;
    triples[3 * i] = start;
    triples[3 * i + 1] = end;
    triples[3 * i + 2] = position + start;
  }
  await nativeIo.pwriteRuns(fd, bytes, triples).catch((e) => {
    throw writeFailure(e, name);
  });
}

/**
 * writeAllAt for a buffered descriptor, synchronously (writeRunsAt without the native helper): a
 * write into the page cache is a copy, and a promise round trip per isolated page would cost more.
 */
function writeAllAtSync(fd: number, bytes: Uint8Array, position: number, name: string): void {
  for (let done = 0; done < bytes.length; ) {
    let n: number;
    try {
      n = fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
    } catch (e) {
      throw writeFailure(e, name);
    }
    if (n === 0) throw Object.assign(new Error(`writing ${name}: short write at offset ${position + done}`), { code: 'EIO' });
    done += n;
  }
}

/** Reads up to `len` bytes at `pos` into `into`; O_DIRECT reads stop at the first short (end-of-file) read. */
export async function readAllAt(handle: fsp.FileHandle, into: Uint8Array, len: number, pos: number, direct: boolean): Promise<number> {
  let done = 0;
  while (done < len) {
    const { bytesRead } = await handle.read(into, done, len - done, pos + done);
    if (bytesRead === 0) break;
    done += bytesRead;
    if (direct && bytesRead % DIRECT_ALIGN !== 0) break;
  }
  return done;
}

/** readAllAt on the calling thread: one read at a time, no thread-pool round trip between them. */
export function readAllAtSync(fd: number, into: Uint8Array, len: number, pos: number, direct: boolean): number {
  let done = 0;
  while (done < len) {
    const n = fs.readSync(fd, into, done, len - done, pos + done);
    if (n === 0) break;
    done += n;
    if (direct && n % DIRECT_ALIGN !== 0) break;
  }
  return done;
}

/** An O_DIRECT open: the handle, or why the file system refused the flag (then handle is null). */
export interface DirectOpen {
  handle: fsp.FileHandle | null;
  /** EINVAL or EOPNOTSUPP when the file system refuses O_DIRECT; null when opened (or the OS has no O_DIRECT). */
  refused: string | null;
}

/** Opens `path` with `flags | O_DIRECT`; only a refusal of the flag (EINVAL, EOPNOTSUPP) is not an error. */
export async function openDirect(path: string, flags: number): Promise<DirectOpen> {
  if (fsc.O_DIRECT === undefined) return { handle: null, refused: null };
  try {
    return { handle: await fsp.open(path, flags | fsc.O_DIRECT), refused: null };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EOPNOTSUPP') throw e;
    return { handle: null, refused: code };
  }
}
