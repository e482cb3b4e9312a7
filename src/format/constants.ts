// Numbers of QEMU's migration stream and mapped-ram layout (spec/format.md §1–§4).

/** "QEVM": the first 4 bytes of a QEMU migration stream. */
export const QEMU_VM_FILE_MAGIC = 0x5145564d;
/** Stream version QEMU writes and accepts. */
export const QEMU_VM_FILE_VERSION = 3;
/** Obsolete stream version, rejected by QEMU. */
export const QEMU_VM_FILE_VERSION_COMPAT = 2;

/** Record type bytes of the main stream (`migration/savevm.h`). */
export const enum RecordType {
  Eof = 0x00,
  SectionStart = 0x01,
  SectionPart = 0x02,
  SectionEnd = 0x03,
  SectionFull = 0x04,
  Subsection = 0x05,
  VmDescription = 0x06,
  Configuration = 0x07,
  Command = 0x08,
  SectionFooter = 0x7e,
}

/**
 * QEMU_VM_COMMAND codes with their fixed payload length (-1 = variable) and whether QEMU 10 and 11
 * load a file holding one (the others need a return path, a postcopy or COLO state a file load
 * never has: measured with QEMU 10.0.2 and 11.1.3, spec §3.4).
 */
export const COMMANDS: ReadonlyMap<number, { name: string; len: number; inFile: boolean; needsReturnPath?: boolean }> = new Map([
  [1, { name: 'OPEN_RETURN_PATH', len: 0, inFile: true }],
  [2, { name: 'PING', len: 4, inFile: true, needsReturnPath: true }],
  [3, { name: 'POSTCOPY_ADVISE', len: -1, inFile: true }],
  [4, { name: 'POSTCOPY_LISTEN', len: 0, inFile: false }],
  [5, { name: 'POSTCOPY_RUN', len: 0, inFile: false }],
  [6, { name: 'POSTCOPY_RAM_DISCARD', len: -1, inFile: false }],
  [7, { name: 'PACKAGED', len: 4, inFile: false }],
  [8, { name: 'ENABLE_COLO', len: 0, inFile: false }],
  [9, { name: 'POSTCOPY_RESUME', len: 0, inFile: true }],
  [10, { name: 'RECV_BITMAP', len: -1, inFile: false }],
  [11, { name: 'SWITCHOVER_START', len: 0, inFile: true }],
]);

/** Low bits of every RAM record's be64 "addr|flags" word (`migration/ram.c`). */
export const RamFlag = {
  FULL: 0x001,
  ZERO: 0x002,
  MEM_SIZE: 0x004,
  PAGE: 0x008,
  EOS: 0x010,
  CONTINUE: 0x020,
  XBZRLE: 0x040,
  HOOK: 0x080,
  COMPRESS_PAGE: 0x100,
  MULTIFD_FLUSH: 0x200,
} as const;

/** idstr of the RAM section. */
export const RAM_SECTION_IDSTR = 'ram';
/** version_id of the RAM section. */
export const RAM_SECTION_VERSION = 4;

/** Version of the per-block MappedRamHeader QEMU writes (it refuses higher ones). */
export const MAPPED_RAM_HDR_VERSION = 1;
/** Bytes of a MappedRamHeader on disk (packed: version, page_size, bitmap_offset, pages_offset). */
export const MAPPED_RAM_HEADER_SIZE = 28;
/** Alignment QEMU gives every page area (1 MiB). */
export const MAPPED_RAM_FILE_OFFSET_ALIGNMENT = 0x100000;
/** QEMU reads page runs in chunks of at most this size when loading. */
export const MAPPED_RAM_LOAD_BUF_SIZE = 0x100000;

/** Default target page size when the configuration has no target-page-bits subsection (x86, s390x). */
export const DEFAULT_TARGET_PAGE_SIZE = 4096;

/** The migration capability that selects the mapped-ram layout. */
export const CAPABILITY_MAPPED_RAM = 'mapped-ram';
/** The capability that leaves shared memory-backend blocks out of the file. */
export const CAPABILITY_X_IGNORE_SHARED = 'x-ignore-shared';

/** Configuration subsection carrying the target page size as a bit count. */
export const SUBSECTION_TARGET_PAGE_BITS = 'configuration/target-page-bits';
/** Configuration subsection listing the capabilities both sides must have. */
export const SUBSECTION_CAPABILITIES = 'configuration/capabilities';
/** Configuration subsection carrying the VM UUID. */
export const SUBSECTION_UUID = 'configuration/uuid';

/** libvirt save-image header (`src/qemu/qemu_saveimage.h`). */
export const LIBVIRT_MAGIC_COMPLETE = 'LibvirtQemudSave';
/** libvirt magic of a save not yet complete (libvirt rewrites it once the data is on disk). */
export const LIBVIRT_MAGIC_PARTIAL = 'LibvirtQemudPart';
/** Bytes of the fixed libvirt save header. */
export const LIBVIRT_HEADER_SIZE = 92;
/** libvirt image formats by their header number. */
export const LIBVIRT_FORMATS = ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd', 'sparse'] as const;
/** Header number of the raw (uncompressed stream) format. */
export const LIBVIRT_FORMAT_RAW = 0;
/** Header number of the sparse (mapped-ram) format. */
export const LIBVIRT_FORMAT_SPARSE = 6;
