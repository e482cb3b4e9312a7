// Opening an input for positional reads: a plain file, a compressed libvirt save read through
// its decompressor, or a qcow2 snapshot's VM state; and the libvirt header in front of a file.
import { decodeLibvirtData, decodeLibvirtFixed, isLibvirtMagic, type LibvirtHeader } from '../codec/libvirt.js';
import { LIBVIRT_HEADER_SIZE } from '../format/constants.js';
import { FormatError, UsageError } from '../format/errors.js';
import { isCompressedFormat, openDecompressedSource } from '../io/decompress.js';
import { FileSource } from '../io/file-source.js';
import type { PositionalSource } from '../io/source.js';
import { isQcow2Magic } from '../qcow2/index.js';
import { openSnapshotSource, snapshotNeeded } from './snapshot.js';

/** Longest libvirt XML/cookie area decoded (the header may reserve more for later edits). */
const MAX_LIBVIRT_DATA = 16 << 20;

/** The decoded fixed part of a libvirt header (the XML and cookie not read). */
export type LibvirtFixed = Omit<LibvirtHeader, 'xml' | 'cookie'>;

/**
 * The one look at byte 0 for a libvirt header: null without its magic, else the decoded fixed
 * part, or the FormatError that says why it does not decode.
 */
export async function sniffLibvirt(source: PositionalSource): Promise<{ fixed: LibvirtFixed } | { error: FormatError } | null> {
  const bytes = new Uint8Array(Math.min(LIBVIRT_HEADER_SIZE, source.size));
  await source.readInto(bytes, 0);
  if (bytes.length < 16 || !isLibvirtMagic(bytes)) return null;
  try {
    return { fixed: decodeLibvirtFixed(bytes, source.size) };
  } catch (e) {
    if (e instanceof FormatError) return { error: e };
    throw e;
  }
}

/** The libvirt header at byte 0, or null when the file has none. */
export async function readLibvirtHeader(source: PositionalSource): Promise<LibvirtHeader | null> {
  const sniff = await sniffLibvirt(source);
  if (!sniff) return null;
  if ('error' in sniff) throw sniff.error;
  const h = sniff.fixed;
  const data = new Uint8Array(Math.min(h.dataLen, MAX_LIBVIRT_DATA));
  await source.readInto(data, LIBVIRT_HEADER_SIZE);
  return { ...h, ...decodeLibvirtData(data, h.cookieOffset) };
}

/** The compressed payload of a libvirt save (format gzip … zstd), or null. A header that does not decode is left to the caller's checks. */
export async function compressedPayload(source: PositionalSource): Promise<{ offset: number; format: string } | null> {
  const sniff = await sniffLibvirt(source);
  if (!sniff || 'error' in sniff) return null;
  return isCompressedFormat(sniff.fixed.formatName) ? { offset: sniff.fixed.dataOffset, format: sniff.fixed.formatName } : null;
}

/**
 * Opens `file` for positional reads. A compressed libvirt save reads as its header followed by the
 * decompressed QEMU stream (offsets past the header count decompressed bytes). With `snapshot`,
 * `file` is a qcow2 image and the source is that internal snapshot's VM state; a qcow2 image
 * named without one is refused with the candidates (not "expected QEMU migration magic").
 */
export async function openInput(file: string | number, snapshot?: string): Promise<PositionalSource> {
  if (snapshot !== undefined) {
    if (typeof file === 'number') throw new UsageError('--snapshot needs a qcow2 image path, not a descriptor');
    return openSnapshotSource(file, snapshot);
  }
  const source = await FileSource.open(file);
  if (typeof file !== 'string') return source;
  let payload;
  try {
    const head = new Uint8Array(Math.min(4, source.size));
    await source.readInto(head, 0);
    if (isQcow2Magic(head)) throw await snapshotNeeded(file);
    payload = await compressedPayload(source);
  } catch (e) {
    await source.close();
    throw e;
  }
  if (!payload) return source;
  await source.close();
  return openDecompressedSource(file, payload.offset, payload.format);
}
