// libvirt's save-image header in front of the QEMU stream (spec/format.md §8).
import { LIBVIRT_FORMATS, LIBVIRT_HEADER_SIZE, LIBVIRT_MAGIC_COMPLETE, LIBVIRT_MAGIC_PARTIAL } from '../format/constants.js';
import { bytesToString, le32 } from '../format/bytes.js';
import { FormatError } from '../format/errors.js';

/** libvirt's save-image header (`virQEMUSaveHeader`), with its domain XML and cookie. */
export interface LibvirtHeader {
  /** false for "LibvirtQemudPart": the save never completed. */
  complete: boolean;
  version: number;
  dataLen: number;
  wasRunning: boolean;
  /** 0 raw … 6 sparse (mapped-ram). */
  format: number;
  formatName: string;
  cookieOffset: number;
  /** 'little' unless the header was written on a big-endian host. */
  endian: 'little' | 'big';
  xml: string;
  cookie: string | null;
  /** Absolute offset where the QEMU stream begins: 92 + dataLen. */
  dataOffset: number;
}

const SUPPORTED_VERSION = 2;

/** True when the first 16 bytes are a libvirt save magic. */
export function isLibvirtMagic(first16: Uint8Array): boolean {
  const m = bytesToString(first16.subarray(0, 16));
  return m === LIBVIRT_MAGIC_COMPLETE || m === LIBVIRT_MAGIC_PARTIAL;
}

/** Decodes the fixed 92-byte part; `data` is read afterwards with `decodeLibvirtData`. */
export function decodeLibvirtFixed(b: Uint8Array, fileSize: number): Omit<LibvirtHeader, 'xml' | 'cookie'> {
  if (b.length < LIBVIRT_HEADER_SIZE) throw new FormatError(b.length, `a ${LIBVIRT_HEADER_SIZE}-byte libvirt save header`, 'end of file', 'truncated');
  const magic = bytesToString(b.subarray(0, 16));
  let endian: 'little' | 'big' = 'little';
  let field = (i: number) => le32(b, 16 + 4 * i);
  if (field(0) > SUPPORTED_VERSION) {
    endian = 'big';
    field = (i: number) => {
      const o = 16 + 4 * i;
      return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    };
  }
  const version = field(0);
  if (version < 1 || version > SUPPORTED_VERSION) throw new FormatError(16, `libvirt save header version 1 or 2`, String(le32(b, 16)));
  const dataLen = field(1);
  const dataOffset = LIBVIRT_HEADER_SIZE + dataLen;
  if (dataOffset > fileSize) throw new FormatError(20, `libvirt data length within the file (size ${fileSize})`, String(dataLen));
  const format = field(3);
  return {
    complete: magic === LIBVIRT_MAGIC_COMPLETE,
    version,
    dataLen,
    wasRunning: field(2) !== 0,
    format,
    formatName: LIBVIRT_FORMATS[format] ?? `unknown(${format})`,
    cookieOffset: field(4),
    endian,
    dataOffset,
  };
}

/** Splits the data area into the NUL-terminated domain XML and the optional cookie (libvirt: XML = [0, cookieOffset)). */
export function decodeLibvirtData(data: Uint8Array, cookieOffset: number): { xml: string; cookie: string | null } {
  const text = (from: number) => {
    const end = data.indexOf(0, from);
    return new TextDecoder().decode(data.subarray(from, end < 0 ? data.length : end));
  };
  const xml = text(0);
  const cookie = cookieOffset > 0 && cookieOffset < data.length ? text(cookieOffset) : null;
  return { xml, cookie };
}

/** libvirt's room for a larger XML edited into the save later (`virQEMUSaveDataWrite`). */
export const LIBVIRT_XML_PADDING = 64 * 1024;

/** The 16-byte magic: "LibvirtQemudSave" once the save is complete, "LibvirtQemudPart" before. */
export function libvirtMagic(complete: boolean): Uint8Array {
  return new TextEncoder().encode(complete ? LIBVIRT_MAGIC_COMPLETE : LIBVIRT_MAGIC_PARTIAL);
}

/**
 * Encodes header + XML + cookie + zero padding, as libvirt's `virQEMUSaveDataWrite` does: a
 * `dataLen` read from a save is kept (the XML and cookie must fit in it), 0 gets XML + cookie +
 * 64 KiB. The QEMU data then starts at 92 + dataLen, unaligned (mapped-ram aligns its own pages).
 */
export function encodeLibvirtHeader(h: Pick<LibvirtHeader, 'complete' | 'version' | 'dataLen' | 'wasRunning' | 'format' | 'endian' | 'xml' | 'cookie'>): Uint8Array {
  const enc = new TextEncoder();
  const xml = enc.encode(h.xml + '\0');
  const cookie = h.cookie === null ? new Uint8Array(0) : enc.encode(h.cookie + '\0');
  const len = xml.length + cookie.length;
  const dataLen = h.dataLen === 0 ? len + LIBVIRT_XML_PADDING : h.dataLen;
  if (len > dataLen) throw new FormatError(20, `a libvirt data length of at least ${len} (XML and cookie)`, String(dataLen));
  const out = new Uint8Array(LIBVIRT_HEADER_SIZE + dataLen);
  out.set(libvirtMagic(h.complete), 0);
  const view = new DataView(out.buffer);
  const fields = [h.version, dataLen, h.wasRunning ? 1 : 0, h.format, cookie.length ? xml.length : 0];
  fields.forEach((v, i) => view.setUint32(16 + 4 * i, v, h.endian === 'little'));
  out.set(xml, LIBVIRT_HEADER_SIZE);
  out.set(cookie, LIBVIRT_HEADER_SIZE + xml.length);
  return out;
}
