// Growable big-endian encoder for records (page data only when a caller encodes a page record with it).
import { putBe16, putBe32, putBe64, stringToBytes } from '../format/bytes.js';

const putU8 = (b: Uint8Array, at: number, v: number) => {
  b[at] = v;
};

/** Growable big-endian encoder: what `encode` and the writers append records to. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  /** Bytes encoded so far (set to 0 to reuse the writer). */
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

  /** Appends an n-byte value written by `write` (room() may replace this.buf: it runs first). */
  private put(n: number, v: number, write: (b: Uint8Array, at: number, v: number) => void): this {
    const at = this.room(n);
    write(this.buf, at, v);
    return this;
  }

  /** A byte. */
  u8(v: number): this {
    return this.put(1, v, putU8);
  }
  /** A be16. */
  u16(v: number): this {
    return this.put(2, v, putBe16);
  }
  /** A be32. */
  u32(v: number): this {
    return this.put(4, v, putBe32);
  }
  /** A be64 (exact below 2^53). */
  u64(v: number): this {
    return this.put(8, v, putBe64);
  }
  /** Raw bytes. */
  bytes(b: Uint8Array): this {
    const at = this.room(b.length);
    this.buf.set(b, at);
    return this;
  }
  /** A latin-1 string's bytes, uncounted. */
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
