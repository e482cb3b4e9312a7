// Test-side writer/reader of libvirt's QEMU save-image header (qemu_saveimage.h):
// 92 bytes, host (little) endian:
//   char magic[16]  "LibvirtQemudSave" (complete) | "LibvirtQemudPart" (in progress)
//   u32 version (2), u32 data_len, u32 was_running, u32 format, u32 cookieOffset, u32 unused[14]
// then domain XML (NUL-terminated), optional cookie, zero padding; QEMU data at 92 + data_len.
import fs from 'node:fs';

export const LIBVIRT_HEADER_SIZE = 92;
export const LIBVIRT_MAGIC_SAVE = 'LibvirtQemudSave';
export const LIBVIRT_MAGIC_PART = 'LibvirtQemudPart';
export const LIBVIRT_SAVE_VERSION = 2;

export const LibvirtFormat = {
  raw: 0,
  gzip: 1,
  bzip2: 2,
  xz: 3,
  lzop: 4,
  zstd: 5,
  sparse: 6,
} as const;

export interface LibvirtHeaderFields {
  magic: typeof LIBVIRT_MAGIC_SAVE | typeof LIBVIRT_MAGIC_PART;
  version: number;
  dataLen: number;
  wasRunning: number;
  format: number;
  cookieOffset: number;
}

export interface LibvirtHeaderOptions {
  xml?: string;
  /** Save cookie XML, stored after the domain XML (NUL-terminated); cookieOffset points at it. */
  cookie?: string;
  part?: boolean;
  wasRunning?: boolean;
  format?: number;
  /**
   * Total data_len. Default: XML (+NUL) + cookie + padding chosen so that the QEMU offset
   * (92 + data_len) equals 0x11921, libvirt's example offset (not 4096-aligned).
   */
  dataLen?: number;
}

export const DEFAULT_DOMAIN_XML = `<domain type='qemu'>
  <name>mram-fixture</name>
  <uuid>6d3f1c8e-0b8e-4a7e-9d3c-2f6a1c0d9e11</uuid>
  <memory unit='KiB'>32768</memory>
  <currentMemory unit='KiB'>32768</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-10.0'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
  </devices>
</domain>
`;

/** libvirt's example sparse-save offset from commit c2518f7bc7. */
export const LIBVIRT_EXAMPLE_OFFSET = 0x11921;

/** Build header + XML + cookie + padding (exactly 92 + data_len bytes). */
export function buildLibvirtHeader(o: LibvirtHeaderOptions = {}): { bytes: Buffer; dataLen: number; qemuOffset: number } {
  const xml = Buffer.from((o.xml ?? DEFAULT_DOMAIN_XML) + '\0', 'utf8');
  const cookie = o.cookie !== undefined ? Buffer.from(o.cookie + '\0', 'utf8') : Buffer.alloc(0);
  const minLen = xml.length + cookie.length;
  const dataLen = o.dataLen ?? LIBVIRT_EXAMPLE_OFFSET - LIBVIRT_HEADER_SIZE;
  if (dataLen < minLen) throw new Error(`data_len ${dataLen} < xml+cookie ${minLen}`);
  const bytes = Buffer.alloc(LIBVIRT_HEADER_SIZE + dataLen);
  bytes.write(o.part ? LIBVIRT_MAGIC_PART : LIBVIRT_MAGIC_SAVE, 0, 16, 'latin1');
  bytes.writeUInt32LE(LIBVIRT_SAVE_VERSION, 16);
  bytes.writeUInt32LE(dataLen, 20);
  bytes.writeUInt32LE(o.wasRunning ? 1 : 0, 24);
  bytes.writeUInt32LE(o.format ?? LibvirtFormat.sparse, 28);
  bytes.writeUInt32LE(cookie.length ? xml.length : 0, 32);
  xml.copy(bytes, LIBVIRT_HEADER_SIZE);
  cookie.copy(bytes, LIBVIRT_HEADER_SIZE + xml.length);
  return { bytes, dataLen, qemuOffset: LIBVIRT_HEADER_SIZE + dataLen };
}

/** Write the header (with "Part" magic unless `part: false`) at byte 0 of a new file. */
export function writeLibvirtHeader(path: string, o: LibvirtHeaderOptions = {}): { dataLen: number; qemuOffset: number } {
  const { bytes, dataLen, qemuOffset } = buildLibvirtHeader({ ...o, part: o.part ?? true });
  fs.writeFileSync(path, bytes);
  return { dataLen, qemuOffset };
}

/** Replace the magic in place (libvirt does this once QEMU has finished). */
export function setLibvirtMagic(path: string, complete: boolean): void {
  const fd = fs.openSync(path, 'r+');
  try {
    fs.writeSync(fd, Buffer.from(complete ? LIBVIRT_MAGIC_SAVE : LIBVIRT_MAGIC_PART, 'latin1'), 0, 16, 0);
  } finally {
    fs.closeSync(fd);
  }
}

/** Raw decode of the 92-byte header (little-endian host assumed). */
export function readLibvirtHeader(buf: Uint8Array): LibvirtHeaderFields & { xml: string } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = b.toString('latin1', 0, 16);
  if (magic !== LIBVIRT_MAGIC_SAVE && magic !== LIBVIRT_MAGIC_PART) throw new Error(`not a libvirt save header: ${JSON.stringify(magic)}`);
  const dataLen = b.readUInt32LE(20);
  const xmlEnd = b.indexOf(0, LIBVIRT_HEADER_SIZE);
  return {
    magic,
    version: b.readUInt32LE(16),
    dataLen,
    wasRunning: b.readUInt32LE(24),
    format: b.readUInt32LE(28),
    cookieOffset: b.readUInt32LE(32),
    xml: b.toString('utf8', LIBVIRT_HEADER_SIZE, xmlEnd < 0 ? Math.min(b.length, LIBVIRT_HEADER_SIZE + dataLen) : xmlEnd),
  };
}
