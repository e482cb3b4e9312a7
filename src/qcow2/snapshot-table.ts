// The snapshot table (docs/interop/qcow2.txt "Snapshot table", block/qcow2-snapshot.c
// qcow2_read_snapshots): fixed fields, extra data (vm_state_size_large, disk_size, icount), id, name.
import { be16, be32, be64, be64big, bytesToString } from '../format/bytes.js';
import { FormatError } from '../format/errors.js';

/** QEMU refuses more extra data than this per entry (QCOW_MAX_SNAPSHOT_EXTRA_DATA). */
export const MAX_EXTRA_DATA = 1024;
/** And a table larger than this (QCOW_MAX_SNAPSHOTS_SIZE). */
export const MAX_TABLE_BYTES = 64 << 20;

/** One entry of the snapshot table (internal snapshot), VM state or disk-only. */
export interface Qcow2Snapshot {
  /** Position in the table (0-based). */
  index: number;
  /** Absolute file offset of the entry. */
  entryOffset: number;
  id: string;
  name: string;
  l1TableOffset: number;
  l1Size: number;
  /** Wall-clock time of the snapshot: seconds and nanoseconds since the epoch. */
  dateSec: number;
  dateNsec: number;
  /** Guest clock (QEMU_CLOCK_VIRTUAL) at the snapshot, in nanoseconds. */
  vmClockNsec: number;
  /**
   * The VM state size QEMU recorded (vm_state_size_large when present). With mapped-ram this is
   * less than the layout's extent: QEMU counts the stream bytes, not the page areas.
   */
  vmStateSize: number;
  /** Virtual disk size when the snapshot was taken (extra data), or null for old entries. */
  diskSize: bigint | null;
  /** Instruction count with -icount (extra data), or null. */
  icount: bigint | null;
}

/** Fields an entry needs before its variable part: 40 fixed bytes. */
export const ENTRY_FIXED = 40;

/** Variable length of an entry after its fixed part (extra data, id, name, padding to 8). */
export function entryRest(fixed: Uint8Array, at: number): number {
  const extra = be32(fixed, 36);
  if (extra > MAX_EXTRA_DATA) throw new FormatError(at + 36, `at most ${MAX_EXTRA_DATA} bytes of snapshot extra data`, String(extra));
  const n = ENTRY_FIXED + extra + be16(fixed, 12) + be16(fixed, 14);
  return Math.ceil(n / 8) * 8 - ENTRY_FIXED;
}

/** Padding bytes at the end of an entry. */
export function entryPadding(fixed: Uint8Array): number {
  const n = ENTRY_FIXED + be32(fixed, 36) + be16(fixed, 12) + be16(fixed, 14);
  return Math.ceil(n / 8) * 8 - n;
}

/** Decodes one entry from its fixed part and the `entryRest` bytes after it. */
export function decodeSnapshot(fixed: Uint8Array, rest: Uint8Array, at: number, index: number, version: number): Qcow2Snapshot {
  const extraSize = be32(fixed, 36);
  const idLen = be16(fixed, 12);
  const nameLen = be16(fixed, 14);
  const extra = rest.subarray(0, extraSize);
  if (version >= 3 && extraSize < 16) throw new FormatError(at + 36, 'at least 16 bytes of snapshot extra data in a version 3 image', String(extraSize));
  const vmStateSmall = be32(fixed, 32);
  const vmStateSize = extraSize >= 8 ? be64(extra, 0, at + ENTRY_FIXED, 'vm_state_size_large') : vmStateSmall;
  return {
    index,
    entryOffset: at,
    id: bytesToString(rest.subarray(extraSize, extraSize + idLen)),
    name: bytesToString(rest.subarray(extraSize + idLen, extraSize + idLen + nameLen)),
    l1TableOffset: be64(fixed, 0, at, 'snapshot L1 table offset'),
    l1Size: be32(fixed, 8),
    dateSec: be32(fixed, 16),
    dateNsec: be32(fixed, 20),
    vmClockNsec: Number(be64big(fixed, 24)),
    vmStateSize,
    diskSize: extraSize >= 16 ? be64big(extra, 8) : null,
    icount: extraSize >= 24 ? be64big(extra, 16) : null,
  };
}
