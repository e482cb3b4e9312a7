// The qcow2 header (docs/interop/qcow2.txt, block/qcow2.h): versions 2 and 3, the features a
// read-only VM-state reader must understand, and one-line refusals for the rest.
import { be32, be64, be64big } from '../format/bytes.js';
import { FormatError, hex } from '../format/errors.js';

/** "QFI\xfb": the first 4 bytes of a qcow2 image. */
export const QCOW2_MAGIC = 0x514649fb;
/** QEMU's limits (block/qcow2.h): cluster_bits 9..21, an L1 table of at most 32 MiB. */
export const MIN_CLUSTER_BITS = 9;
/** Largest cluster_bits QEMU accepts (2 MiB clusters). */
export const MAX_CLUSTER_BITS = 21;
/** Most L1 entries QEMU accepts (a 32 MiB table). */
export const MAX_L1_ENTRIES = (32 << 20) / 8;
/** Most snapshots QEMU accepts in a table (QCOW_MAX_SNAPSHOTS). */
export const MAX_SNAPSHOTS = 65536;

const INCOMPAT_DIRTY = 1n << 0n;
const INCOMPAT_CORRUPT = 1n << 1n;
const INCOMPAT_DATA_FILE = 1n << 2n;
const INCOMPAT_COMPRESSION = 1n << 3n;
const INCOMPAT_EXTL2 = 1n << 4n;
const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

const EXT_END = 0;
const EXT_DATA_FILE = 0x44415441;
const EXT_CRYPTO = 0x0537be77;
const EXT_BACKING_FORMAT = 0xe2792aca;

/** Compression of compressed clusters (header compression_type). */
export type CompressionType = 'zlib' | 'zstd';

/** The qcow2 header fields a read-only VM-state reader needs. */
export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  clusterSize: number;
  /** Virtual disk size in bytes (may exceed 2^53: kept exact). */
  size: bigint;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  /** Bytes of the fixed header (72 for version 2). */
  headerLength: number;
  extendedL2: boolean;
  compression: CompressionType;
  /** log2 of the refcount width in bits (4: 16-bit refcounts, version 2's only width). */
  refcountOrder: number;
  /** The image was not closed cleanly (refcounts may be stale; L1/L2 tables are still valid). */
  dirty: boolean;
  corrupt: boolean;
}

/** Bytes needed to decode the fixed header; the rest of the first cluster holds the extensions. */
export const HEADER_PROBE = 112;

/** Whether the bytes start with the qcow2 magic. */
export function isQcow2Magic(b: Uint8Array): boolean {
  return b.length >= 4 && be32(b, 0) === QCOW2_MAGIC;
}

/**
 * Decodes the header from the image's first bytes (at least the first cluster, or the whole file
 * when smaller) and refuses what this reader does not support, each with one line.
 */
export function decodeHeader(b: Uint8Array, fileSize: number): Qcow2Header {
  if (b.length < 72) throw new FormatError(b.length, 'a qcow2 header of at least 72 bytes', 'end of file', 'truncated');
  if (be32(b, 0) !== QCOW2_MAGIC) throw new FormatError(0, 'qcow2 magic "QFI\\xfb"', hex(be32(b, 0)), 'magic');
  const version = be32(b, 4);
  if (version !== 2 && version !== 3) throw new FormatError(4, 'qcow2 version 2 or 3', String(version), 'version');
  const clusterBits = be32(b, 20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new FormatError(20, `cluster_bits between ${MIN_CLUSTER_BITS} and ${MAX_CLUSTER_BITS}`, String(clusterBits));
  }
  const clusterSize = 2 ** clusterBits;
  const backingOffset = be64big(b, 8);
  const cryptMethod = be32(b, 32);
  if (cryptMethod !== 0) throw new FormatError(32, 'an unencrypted image (encrypted qcow2 images are not supported)', `crypt_method ${cryptMethod}`);
  const { headerLength, incompatible, compression, refcountOrder } = version === 3 ? decodeV3Fields(b, clusterSize) : V2_FIELDS;
  refuseUnsupported(b, readExtensions(b, headerLength, clusterSize), incompatible, backingOffset);
  const l1Size = be32(b, 36);
  const nbSnapshots = be32(b, 60);
  const h: Qcow2Header = {
    version,
    clusterBits,
    clusterSize,
    size: be64big(b, 24),
    l1Size,
    l1TableOffset: be64(b, 40, 40, 'L1 table offset'),
    refcountTableOffset: be64(b, 48, 48, 'refcount table offset'),
    refcountTableClusters: be32(b, 56),
    nbSnapshots,
    snapshotsOffset: be64(b, 64, 64, 'snapshot table offset'),
    headerLength,
    extendedL2: (incompatible & INCOMPAT_EXTL2) !== 0n,
    compression,
    refcountOrder,
    dirty: (incompatible & INCOMPAT_DIRTY) !== 0n,
    corrupt: (incompatible & INCOMPAT_CORRUPT) !== 0n,
  };
  if (h.extendedL2 && clusterBits < 14) throw new FormatError(20, 'cluster_bits of 14 or more with extended L2 entries', String(clusterBits));
  if (l1Size > MAX_L1_ENTRIES) throw new FormatError(36, `an L1 table of at most ${MAX_L1_ENTRIES} entries`, String(l1Size));
  checkTable(h, h.l1TableOffset, l1Size * 8, 40, 'the active L1 table', fileSize);
  if (nbSnapshots > MAX_SNAPSHOTS) throw new FormatError(60, `at most ${MAX_SNAPSHOTS} snapshots`, String(nbSnapshots));
  if (nbSnapshots > 0) checkTable(h, h.snapshotsOffset, 40 * nbSnapshots, 64, 'the snapshot table', fileSize);
  return h;
}

/** The fields version 3 adds: header length, incompatible features and compression type. */
interface V3Fields {
  headerLength: number;
  incompatible: bigint;
  compression: CompressionType;
  refcountOrder: number;
}

/** A version 2 header has none of them: 72 bytes, no features, zlib. */
const V2_FIELDS: V3Fields = { headerLength: 72, incompatible: 0n, compression: 'zlib', refcountOrder: 4 };

function decodeV3Fields(b: Uint8Array, clusterSize: number): V3Fields {
  if (b.length < 104) throw new FormatError(b.length, 'a version 3 qcow2 header of at least 104 bytes', 'end of file', 'truncated');
  const incompatible = be64big(b, 72);
  const headerLength = be32(b, 100);
  if (headerLength < 104 || headerLength % 8 !== 0 || headerLength > clusterSize) {
    throw new FormatError(100, `a header length of 104 or more, a multiple of 8, within the first cluster`, String(headerLength));
  }
  const unknown = incompatible & ~INCOMPAT_KNOWN;
  if (unknown) throw new FormatError(72, 'only known incompatible features', `unknown feature bits ${hex(unknown)}`);
  let compression: CompressionType = 'zlib';
  if (incompatible & INCOMPAT_COMPRESSION) {
    const type = headerLength > 104 && b.length > 104 ? b[104]! : 0;
    if (type > 1) throw new FormatError(104, 'compression type 0 (zlib) or 1 (zstd)', String(type));
    compression = type === 1 ? 'zstd' : 'zlib';
  }
  const refcountOrder = be32(b, 96);
  if (refcountOrder > 6) throw new FormatError(96, 'a refcount order of at most 6 (64-bit refcounts)', String(refcountOrder));
  return { headerLength, incompatible, compression, refcountOrder };
}

/** One line each for an external data file, encryption or a backing file: this reader supports none. */
function refuseUnsupported(b: Uint8Array, extensions: Extensions, incompatible: bigint, backingOffset: bigint): void {
  if (incompatible & INCOMPAT_DATA_FILE) {
    const name = extensions.dataFile === null ? '' : ` ${JSON.stringify(extensions.dataFile)}`;
    throw new FormatError(72, 'guest data inside the image (images with an external data file are not supported)', `external data file${name}`);
  }
  if (extensions.crypto) throw new FormatError(32, 'an unencrypted image (encrypted qcow2 images are not supported)', 'a full disk encryption header extension');
  if (backingOffset !== 0n) {
    const len = be32(b, 16);
    const at = Number(backingOffset);
    const name = at + len <= b.length && len <= 1023 ? ` ${JSON.stringify(new TextDecoder('latin1').decode(b.subarray(at, at + len)))}` : '';
    throw new FormatError(8, 'a standalone image (images with a backing file are not supported)', `backing file${name}`);
  }
}

/** A table must be cluster-aligned, after the header cluster and inside the file. */
export function checkTable(h: Qcow2Header, offset: number, bytes: number, field: number, what: string, fileSize: number): void {
  if (bytes === 0) return;
  if (offset % h.clusterSize !== 0) throw new FormatError(field, `${what} aligned to the cluster size ${h.clusterSize}`, `offset ${hex(offset)}`);
  if (offset < h.clusterSize) throw new FormatError(field, `${what} after the header cluster`, `offset ${hex(offset)} overlapping the header`);
  if (offset + bytes > fileSize) throw new FormatError(field, `${what} (${bytes} bytes at ${hex(offset)}) inside the file of ${fileSize} bytes`, 'end of file', 'truncated');
}

interface Extensions {
  dataFile: string | null;
  crypto: boolean;
  backingFormat: string | null;
}

function readExtensions(b: Uint8Array, start: number, clusterSize: number): Extensions {
  const out: Extensions = { dataFile: null, crypto: false, backingFormat: null };
  const end = Math.min(b.length, clusterSize);
  let at = start;
  while (at + 8 <= end) {
    const type = be32(b, at);
    const len = be32(b, at + 4);
    if (type === EXT_END) break;
    if (at + 8 + len > end) throw new FormatError(at + 4, `header extension ${hex(type)} inside the first cluster`, `length ${len}`);
    const data = b.subarray(at + 8, at + 8 + len);
    if (type === EXT_DATA_FILE) out.dataFile = new TextDecoder('latin1').decode(data);
    else if (type === EXT_CRYPTO) out.crypto = true;
    else if (type === EXT_BACKING_FORMAT) out.backingFormat = new TextDecoder('latin1').decode(data);
    at += 8 + Math.ceil(len / 8) * 8;
  }
  return out;
}

/** Bytes of guest address space one L1 entry covers: a cluster of L2 entries, each mapping a cluster. */
export function l1Coverage(h: Qcow2Header): number {
  const entriesPerL2 = h.clusterSize / (h.extendedL2 ? 16 : 8);
  return entriesPerL2 * h.clusterSize;
}

/** First L1 index past `diskSize`: where QEMU's vmstate area starts (qcow2_vm_state_offset()). */
export function vmStateL1Index(h: Qcow2Header, diskSize: bigint): bigint {
  const cover = BigInt(l1Coverage(h));
  return (diskSize + cover - 1n) / cover;
}

/**
 * Where a compressed cluster's bytes are, from its L2 entry (docs/interop/qcow2.txt): the host
 * offset in the low bits, the additional 512-byte sectors above them, up to bit 61.
 */
export function compressedSpan(entry: bigint, clusterBits: number): { host: number; bytes: number } {
  const shift = BigInt(62 - (clusterBits - 8));
  const host = Number(entry & ((1n << shift) - 1n));
  const sectors = Number((entry >> shift) & BigInt((1 << (clusterBits - 8)) - 1)) + 1;
  return { host, bytes: sectors * 512 - (host % 512) };
}

