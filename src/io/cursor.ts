// Sequential, buffered reading of a migration stream from a file (seekable) or a pipe.
// `need(n)` makes n bytes available; the sync getters then decode them without further checks.
import { FormatError } from '../format/errors.js';
import { be16, be32, be64, bytesToString } from '../format/bytes.js';
import type { PositionalSource } from './source.js';

/** No single record is buffered whole beyond this; larger claims are refused before allocating. */
export const MAX_BUFFERED_RECORD = 64 << 20;
const READ_AHEAD = 64 << 10;

/** Sequential reads of a migration stream with look-ahead: a file at an offset, or a pipe. */
export abstract class Cursor {
  protected buf: Uint8Array = new Uint8Array(READ_AHEAD);
  protected start = 0; // index of the next unread byte in buf
  protected end = 0; // index after the last valid byte in buf
  protected bufOffset = 0; // absolute offset of buf[0]

  /** Absolute file offset of the next unread byte. */
  get offset(): number {
    return this.bufOffset + this.start;
  }

  get buffered(): number {
    return this.end - this.start;
  }

  /** Ensures n bytes are buffered, or fails naming what was being read. */
  async need(n: number, what: string): Promise<void> {
    if (this.end - this.start >= n) return;
    if (n > MAX_BUFFERED_RECORD) throw new FormatError(this.offset, `${what} of at most ${MAX_BUFFERED_RECORD} bytes`, `${n} bytes`);
    const got = await this.fill(n);
    if (got < n) throw new FormatError(this.offset + got, `${what} (${n} bytes at ${this.offset})`, 'end of file', 'truncated');
  }

  /** Buffers up to n bytes, without failing at the input's end; returns how many are buffered (fewer: the input ended). */
  async fillUpTo(n: number): Promise<number> {
    const buffered = this.end - this.start;
    return buffered >= n ? buffered : this.fill(n);
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return this.end - this.start === 0 && (await this.fill(1)) === 0;
  }

  peekU8(): number {
    return this.buf[this.start]!;
  }
  /** A view of the next n buffered bytes, not consumed (the caller checked `buffered`). */
  peek(n: number): Uint8Array {
    return this.buf.subarray(this.start, this.start + n);
  }
  u8(): number {
    return this.buf[this.start++]!;
  }
  u16(): number {
    const v = be16(this.buf, this.start);
    this.start += 2;
    return v;
  }
  u32(): number {
    const v = be32(this.buf, this.start);
    this.start += 4;
    return v;
  }
  u64(what: string): number {
    const v = be64(this.buf, this.start, this.offset, what);
    this.start += 8;
    return v;
  }
  /** A view valid until the next `need`; copy it to keep it. */
  bytes(n: number): Uint8Array {
    const v = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return v;
  }
  string(n: number): string {
    return bytesToString(this.bytes(n));
  }

  async readU8(what: string): Promise<number> {
    await this.need(1, what);
    return this.u8();
  }
  async readU32(what: string): Promise<number> {
    await this.need(4, what);
    return this.u32();
  }
  async readU64(what: string): Promise<number> {
    await this.need(8, what);
    return this.u64(what);
  }
  async readBytes(n: number, what: string): Promise<Uint8Array> {
    await this.need(n, what);
    return this.bytes(n);
  }
  /** u8 length + that many bytes, as in QEMU's counted strings. */
  async readCountedString(what: string): Promise<string> {
    const n = await this.readU8(`${what} length`);
    await this.need(n, what);
    return this.string(n);
  }

  /**
   * Buffers input in `view` from now on (e.g. wasm memory, so a kernel can consume it in place);
   * unread bytes move over. A record larger than `view` later moves the cursor to a heap buffer.
   */
  async useBuffer(view: Uint8Array): Promise<void> {
    const unread = this.end - this.start;
    if (unread > view.length) throw new RangeError(`buffer of ${view.length} bytes cannot hold the ${unread} unread bytes`);
    view.set(this.buf.subarray(this.start, this.end));
    this.bufOffset += this.start;
    this.buf = view;
    this.start = 0;
    this.end = unread;
  }

  /** Everything left of the input, buffered but not consumed; null when it exceeds `max` bytes. */
  abstract peekRest(max: number): Promise<Uint8Array | null>;
  /** Moves the read position forward by n bytes. */
  abstract skip(n: number, what: string): Promise<void>;
  /** Moves to an absolute offset (pipes: forward only). */
  abstract seek(offset: number, what: string): Promise<void>;
  /** Reads until at least n bytes are buffered or the input ends; returns what is buffered. */
  protected abstract fill(n: number): Promise<number>;

  /** Makes room for n unread bytes at the front of the buffer. */
  protected compact(n: number): void {
    const unread = this.end - this.start;
    if (this.buf.length < n) {
      const bigger = new Uint8Array(Math.max(n, this.buf.length * 2));
      bigger.set(this.buf.subarray(this.start, this.end));
      this.buf = bigger;
    } else if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
    }
    this.bufOffset += this.start;
    this.start = 0;
    this.end = unread;
  }
}

/** Cursor over a file: skips and seeks are free (no bytes are read). */
export class FileCursor extends Cursor {
  constructor(
    readonly source: PositionalSource,
    offset: number,
  ) {
    super();
    this.bufOffset = offset;
  }

  override async seek(offset: number, what: string): Promise<void> {
    if (offset > this.source.size) throw new FormatError(this.offset, `${what} inside the file (offset ${offset})`, `file size ${this.source.size}`, 'truncated');
    if (offset >= this.bufOffset && offset <= this.bufOffset + this.end) {
      this.start = offset - this.bufOffset;
      return;
    }
    this.bufOffset = offset;
    this.start = this.end = 0;
  }

  override skip(n: number, what: string): Promise<void> {
    return this.seek(this.offset + n, what);
  }

  override async peekRest(max: number): Promise<Uint8Array | null> {
    const remaining = this.source.size - this.offset;
    if (remaining > max) return null;
    await this.need(remaining, 'rest of the file');
    return this.buf.subarray(this.start, this.end);
  }

  protected override async fill(n: number): Promise<number> {
    const remaining = this.source.size - this.offset;
    if (remaining < n) n = Math.max(0, remaining);
    this.compact(Math.min(Math.max(n, READ_AHEAD), MAX_BUFFERED_RECORD));
    const want = Math.min(this.buf.length - this.end, remaining - this.end);
    if (want > 0) {
      this.end += await this.source.readInto(this.buf.subarray(this.end, this.end + want), this.bufOffset + this.end);
    }
    return this.end - this.start;
  }
}

/** Cursor over a pipe or any async byte stream (e.g. process.stdin); skips read and discard. */
export class StreamCursor extends Cursor {
  private readonly chunks: AsyncIterator<Uint8Array>;
  private done = false;

  constructor(input: AsyncIterable<Uint8Array>, offset = 0) {
    super();
    this.chunks = input[Symbol.asyncIterator]();
    this.bufOffset = offset;
  }

  override async seek(offset: number, what: string): Promise<void> {
    if (offset < this.offset) throw new FormatError(this.offset, `${what} ahead of the read position in a pipe (offset ${offset})`);
    await this.skip(offset - this.offset, what);
  }

  override async skip(n: number, what: string): Promise<void> {
    while (n > 0) {
      if (this.end === this.start && (await this.fill(1)) === 0) {
        throw new FormatError(this.offset, `${n} more bytes of ${what}`, 'end of input', 'truncated');
      }
      const k = Math.min(n, this.end - this.start);
      this.start += k;
      n -= k;
    }
  }

  override async peekRest(max: number): Promise<Uint8Array | null> {
    return (await this.fill(max + 1)) > max ? null : this.buf.subarray(this.start, this.end);
  }

  protected override async fill(n: number): Promise<number> {
    if (this.end - this.start >= n || this.done) return this.end - this.start;
    while (this.end - this.start < n) {
      const r = await this.chunks.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const chunk = r.value;
      if (this.end + chunk.length > this.buf.length) this.compact(this.end - this.start + chunk.length);
      this.buf.set(chunk, this.end);
      this.end += chunk.length;
    }
    return this.end - this.start;
  }
}
