// Where a QEMU stream starts when it is not at byte 0 (a save made with `file:PATH,offset=N`).
import { QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION } from '../format/constants.js';
import { FormatError } from '../format/errors.js';
import { readStreamStart } from './detect.js';
import type { PositionalSource } from '../io/source.js';

/** How far into a file the stream start is looked for (QEMU's offset= is usually a few KiB to a few MiB). */
export const STREAM_SEARCH_LIMIT = 64 << 20;

const SIGNATURE = Uint8Array.of(0x51, 0x45, 0x56, 0x4d, 0, 0, 0, QEMU_VM_FILE_VERSION);
const CHUNK = 1 << 20;

/**
 * The first offset in (0, limit) where a QEMU stream starts: the magic, version 3 and a
 * configuration section that parses. null when there is none. Reads at most `limit` bytes.
 */
export async function findStreamStart(source: PositionalSource, limit = STREAM_SEARCH_LIMIT): Promise<number | null> {
  const end = Math.min(source.size, limit);
  const buf = Buffer.alloc(CHUNK + SIGNATURE.length - 1);
  // Chunks overlap by the signature length less one, so a signature across a boundary is found.
  for (let at = 1; at < end; at += CHUNK) {
    const n = await source.readInto(buf.subarray(0, Math.min(buf.length, source.size - at)), at);
    const view = buf.subarray(0, n);
    for (let i = view.indexOf(SIGNATURE); i >= 0 && at + i < end; i = view.indexOf(SIGNATURE, i + 1)) {
      if (await configurationParses(source, at + i)) return at + i;
    }
  }
  return null;
}

async function configurationParses(source: PositionalSource, offset: number): Promise<boolean> {
  try {
    return (await readStreamStart(source, offset)).config !== null;
  } catch {
    return false; // not a stream start
  }
}

/**
 * No QEMU magic at the given offset, but a stream starts further on: the error names where, and
 * the option that reads it (`flag`, e.g. "--offset").
 */
export class StreamElsewhereError extends FormatError {
  constructor(
    cause: FormatError,
    readonly streamOffset: number,
    flag: string,
  ) {
    super(cause.offset, cause.expected, cause.found, 'magic');
    this.message = `${cause.message}; a QEMU stream starts at offset ${streamOffset}: use ${flag} ${streamOffset}`;
  }
}

/** True when the bytes at `offset` are the QEMU magic. */
export async function hasMagicAt(source: PositionalSource, offset: number): Promise<boolean> {
  const b = new Uint8Array(4);
  if ((await source.readInto(b, offset)) < 4) return false;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0 === QEMU_VM_FILE_MAGIC;
}

/**
 * Turns a magic error at offset 0 of a file without a libvirt header into a StreamElsewhereError
 * when a stream starts further on; any other error is returned as it is.
 */
export async function explainMissingMagic(e: unknown, source: PositionalSource, flag = '--offset'): Promise<unknown> {
  if (!(e instanceof FormatError) || e.kind !== 'magic' || e.offset !== 0) return e;
  const at = await findStreamStart(source);
  return at === null ? e : new StreamElsewhereError(e, at, flag);
}
