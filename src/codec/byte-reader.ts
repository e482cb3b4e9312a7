// Synchronous big-endian reads over the bytes buffered so far: what `decode` parses with. Short
// input is "need more" while more may come, and the Cursor's own truncation error once it cannot.
import { FormatError } from '../format/errors.js';
import { be16, be32, be64, bytesToString } from '../format/bytes.js';
import { MAX_BUFFERED_RECORD } from '../io/cursor.js';

/** Thrown inside a decode step when the buffered bytes end early: `bytes` are needed from the step's start. */
export class NeedMore {
  constructor(readonly bytes: number) {}
}

/**
 * A read position in `bytes`, whose byte 0 sits at absolute offset `base`. `final`: the bytes are
 * all that is left of the input (a short read is then the input's end, not a wait for more).
 */
export class ByteReader {
  /** Index in `bytes` of the next unread byte. */
  pos = 0;

  constructor(
    readonly bytes: Uint8Array,
    readonly base: number,
    readonly final: boolean,
  ) {}

  /** Absolute offset of the next unread byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Bytes left in the buffer. */
  get left(): number {
    return this.bytes.length - this.pos;
  }

  /** True when nothing is left of the input (more input pending: NeedMore). */
  atEnd(): boolean {
    if (this.pos < this.bytes.length) return false;
    if (!this.final) throw new NeedMore(this.pos + 1);
    return true;
  }

  /** Ensures n bytes follow, with the same errors as `Cursor.need`. */
  need(n: number, what: string): void {
    if (this.bytes.length - this.pos >= n) return;
    if (n > MAX_BUFFERED_RECORD) throw new FormatError(this.offset, `${what} of at most ${MAX_BUFFERED_RECORD} bytes`, `${n} bytes`);
    if (!this.final) throw new NeedMore(this.pos + n);
    throw new FormatError(this.base + this.bytes.length, `${what} (${n} bytes at ${this.offset})`, 'end of file', 'truncated');
  }

  /** The next byte, not consumed (after `need`). */
  peekU8(): number {
    return this.bytes[this.pos]!;
  }
  /** A byte (`what` names it in errors, as for the other reads). */
  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }
  /** A be16. */
  u16(what: string): number {
    this.need(2, what);
    const v = be16(this.bytes, this.pos);
    this.pos += 2;
    return v;
  }
  /** A be32. */
  u32(what: string): number {
    this.need(4, what);
    const v = be32(this.bytes, this.pos);
    this.pos += 4;
    return v;
  }
  /** A be64 below 2^53 (larger values name `what`). */
  u64(what: string): number {
    this.need(8, what);
    const v = be64(this.bytes, this.pos, this.offset, what);
    this.pos += 8;
    return v;
  }
  /** A view of the next n bytes, consumed. */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** n bytes as a latin-1 string. */
  string(n: number, what: string): string {
    return bytesToString(this.take(n, what));
  }
  /** u8 length + that many bytes, as in QEMU's counted strings. */
  countedString(what: string): string {
    const n = this.u8(`${what} length`);
    return this.string(n, what);
  }
}
