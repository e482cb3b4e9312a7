// Fixed-width integer access on byte arrays. Offsets above 2^53 are refused, never rounded.
import { FormatError } from './errors.js';

const TWO32 = 0x1_0000_0000;
/** High word limit for a 64-bit value to stay an exact JS number (< 2^53). */
const SAFE_HIGH = 0x20_0000;

/** Big-endian u16 at byte i. */
export function be16(b: Uint8Array, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}

/** Big-endian u32 at byte i (unsigned). */
export function be32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

/** Little-endian u32 at byte i (unsigned; libvirt header fields). */
export function le32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

/** Big-endian u64 as an exact number; `at` is the absolute file offset for the error. */
export function be64(b: Uint8Array, i: number, at: number, what: string): number {
  const hi = be32(b, i);
  if (hi >= SAFE_HIGH) throw new FormatError(at, `${what} below 2^53`, `0x${be64big(b, i).toString(16)}`);
  return hi * TWO32 + be32(b, i + 4);
}

/** Big-endian u64 at byte i as an exact bigint (for values that may exceed 2^53). */
export function be64big(b: Uint8Array, i: number): bigint {
  return (BigInt(be32(b, i)) << 32n) | BigInt(be32(b, i + 4));
}

/** Stores v as a big-endian u16 at byte i. */
export function putBe16(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 8;
  b[i + 1] = v;
}

/** Stores v as a big-endian u32 at byte i. */
export function putBe32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = v >>> 16;
  b[i + 2] = v >>> 8;
  b[i + 3] = v;
}

/** Stores v as a little-endian u32 at byte i. */
export function putLe32(b: Uint8Array, i: number, v: number): void {
  b[i] = v;
  b[i + 1] = v >>> 8;
  b[i + 2] = v >>> 16;
  b[i + 3] = v >>> 24;
}

/** Stores v (a safe non-negative integer, else RangeError) as a big-endian u64 at byte i. */
export function putBe64(b: Uint8Array, i: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 value out of range: ${v}`);
  putBe32(b, i, Math.floor(v / TWO32));
  putBe32(b, i + 4, v >>> 0);
}

const latin1 = new TextDecoder('latin1');
/** idstrs and names are raw bytes in QEMU; latin1 keeps every byte one code unit, so nothing is lost. */
export function bytesToString(b: Uint8Array): string {
  return latin1.decode(b);
}

/** The inverse of bytesToString: one byte per code unit (latin1), as QEMU writes idstrs. */
export function stringToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}
