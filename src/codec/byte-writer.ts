// Growable big-endian encoder for records (metadata only; page data never passes through here).
import { putBe16, putBe32, putBe64, stringToBytes } from '../format/bytes.js';

export class ByteWriter {
  private buf = new Uint8Array(256);
  length = 0;

  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1); // room() may replace this.buf: evaluate it first
    this.buf[at] = v;
    return this;
  }
  u16(v: number): this {
    const at = this.room(2);
    putBe16(this.buf, at, v);
    return this;
  }
  u32(v: number): this {
    const at = this.room(4);
    putBe32(this.buf, at, v);
    return this;
  }
  u64(v: number): this {
    const at = this.room(8);
    putBe64(this.buf, at, v);
    return this;
  }
  bytes(b: Uint8Array): this {
    const at = this.room(b.length);
    this.buf.set(b, at);
    return this;
  }
  string(s: string): this {
    return this.bytes(stringToBytes(s));
  }
  /** u8 length then the bytes, as QEMU's counted strings. */
  countedString(s: string): this {
    if (s.length > 255) throw new RangeError(`counted string longer than 255: ${s.length}`);
    return this.u8(s.length).string(s);
  }

  /** The encoded bytes (a view; copy before the next write if kept). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

}
