// Numbers of QEMU's migration stream and mapped-ram layout (spec/format.md §1–§4).

export const QEMU_VM_FILE_MAGIC = 0x5145564d; // "QEVM"
export const QEMU_VM_FILE_VERSION = 3;
export const QEMU_VM_FILE_VERSION_COMPAT = 2; // obsolete, rejected by QEMU

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

/** QEMU_VM_COMMAND codes with their fixed payload length (-1 = variable). */
export const COMMANDS: ReadonlyMap<number, { name: string; len: number }> = new Map([
  [1, { name: 'OPEN_RETURN_PATH', len: 0 }],
  [2, { name: 'PING', len: 4 }],
  [3, { name: 'POSTCOPY_ADVISE', len: -1 }],
  [4, { name: 'POSTCOPY_LISTEN', len: 0 }],
  [5, { name: 'POSTCOPY_RUN', len: 0 }],
  [6, { name: 'POSTCOPY_RAM_DISCARD', len: -1 }],
  [7, { name: 'PACKAGED', len: 4 }],
  [8, { name: 'ENABLE_COLO', len: 0 }],
  [9, { name: 'POSTCOPY_RESUME', len: 0 }],
  [10, { name: 'RECV_BITMAP', len: -1 }],
  [11, { name: 'SWITCHOVER_START', len: 0 }],
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

export const RAM_SECTION_IDSTR = 'ram';
export const RAM_SECTION_VERSION = 4;

export const MAPPED_RAM_HDR_VERSION = 1;
export const MAPPED_RAM_HEADER_SIZE = 28;
export const MAPPED_RAM_FILE_OFFSET_ALIGNMENT = 0x100000;
/** QEMU reads page runs in chunks of at most this size when loading. */
export const MAPPED_RAM_LOAD_BUF_SIZE = 0x100000;

/** Default target page size when the configuration has no target-page-bits subsection (x86, s390x). */
export const DEFAULT_TARGET_PAGE_SIZE = 4096;

export const CAPABILITY_MAPPED_RAM = 'mapped-ram';
export const CAPABILITY_X_IGNORE_SHARED = 'x-ignore-shared';

export const SUBSECTION_TARGET_PAGE_BITS = 'configuration/target-page-bits';
export const SUBSECTION_CAPABILITIES = 'configuration/capabilities';
export const SUBSECTION_UUID = 'configuration/uuid';

/** libvirt save-image header (`src/qemu/qemu_saveimage.h`). */
export const LIBVIRT_MAGIC_COMPLETE = 'LibvirtQemudSave';
export const LIBVIRT_MAGIC_PARTIAL = 'LibvirtQemudPart';
export const LIBVIRT_HEADER_SIZE = 92;
export const LIBVIRT_FORMATS = ['raw', 'gzip', 'bzip2', 'xz', 'lzop', 'zstd', 'sparse'] as const;
export const LIBVIRT_FORMAT_RAW = 0;
export const LIBVIRT_FORMAT_SPARSE = 6;
