// Opening an input for positional reads: a plain file, or a compressed libvirt save read through
// its decompressor; and the libvirt header in front of either.
import { decodeLibvirtData, decodeLibvirtFixed, isLibvirtMagic, type LibvirtHeader } from '../codec/libvirt.js';
import { LIBVIRT_HEADER_SIZE } from '../format/constants.js';
import { FormatError } from '../format/errors.js';
import { isCompressedFormat, openDecompressedSource } from '../io/decompress.js';
import { FileSource } from '../io/file-source.js';

/** Longest libvirt XML/cookie area decoded (the header may reserve more for later edits). */
const MAX_LIBVIRT_DATA = 16 << 20;

/** The libvirt header at byte 0, or null when the file has none. */
export async function readLibvirtHeader(source: FileSource): Promise<LibvirtHeader | null> {
  const fixed = new Uint8Array(Math.min(LIBVIRT_HEADER_SIZE, source.size));
  await source.readInto(fixed, 0);
  if (fixed.length < 16 || !isLibvirtMagic(fixed)) return null;
  const h = decodeLibvirtFixed(fixed, source.size);
  const data = new Uint8Array(Math.min(h.dataLen, MAX_LIBVIRT_DATA));
  await source.readInto(data, LIBVIRT_HEADER_SIZE);
  return { ...h, ...decodeLibvirtData(data, h.cookieOffset) };
}

/** The compressed payload of a libvirt save (format gzip … zstd), or null. A header that does not decode is left to the caller's checks. */
export async function compressedPayload(source: FileSource): Promise<{ offset: number; format: string } | null> {
  const fixed = new Uint8Array(Math.min(LIBVIRT_HEADER_SIZE, source.size));
  await source.readInto(fixed, 0);
  if (fixed.length < 16 || !isLibvirtMagic(fixed)) return null;
  try {
    const h = decodeLibvirtFixed(fixed, source.size);
    return isCompressedFormat(h.formatName) ? { offset: h.dataOffset, format: h.formatName } : null;
  } catch (e) {
    if (e instanceof FormatError) return null;
    throw e;
  }
}

/**
 * Opens `file` for positional reads. A compressed libvirt save reads as its header followed by the
 * decompressed QEMU stream (offsets past the header count decompressed bytes).
 */
export async function openInput(file: string | number): Promise<FileSource> {
  const source = await FileSource.open(file);
  if (typeof file !== 'string') return source;
  let payload;
  try {
    payload = await compressedPayload(source);
  } catch (e) {
    await source.close();
    throw e;
  }
  if (!payload) return source;
  await source.close();
  return openDecompressedSource(file, payload.offset, payload.format);
}
