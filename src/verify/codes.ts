// The check codes of `mram verify`: the single source of truth for their severity and meaning.

/** Whether a finding is an error (exit 2) or a warning (exit 3). */
export type Severity = 'error' | 'warning';

/** A check code's severity and meaning. */
export interface CheckCode {
  severity: Severity;
  description: string;
}

/** Every check code of `mram verify` with its severity and meaning (spec/format.md §10). */
export const CHECK_CODES = {
  E_OPEN: { severity: 'error', description: 'the file cannot be opened or read (verify could not check it)' },
  E_MAGIC: { severity: 'error', description: 'no "QEVM" magic at the stream offset: not a QEMU migration file (could not check)' },
  E_VERSION: { severity: 'error', description: 'stream version is not 3 (2 is obsolete and rejected by QEMU)' },
  E_LIBVIRT_HEADER: { severity: 'error', description: 'the libvirt save-image header cannot be decoded' },
  E_DECOMPRESS: { severity: 'error', description: 'the compressed data of a libvirt save does not decompress (corrupt or cut short)' },
  E_LIBVIRT_INCOMPLETE: { severity: 'error', description: 'libvirt magic is "LibvirtQemudPart": the save never completed' },
  E_CONFIGURATION: { severity: 'error', description: 'the configuration section is missing or malformed' },
  E_CONFIG_MAPPED_RAM: { severity: 'error', description: 'the mapped-ram capability disagrees with the RAM blocks (or libvirt format) actually present' },
  E_FRAMING: { severity: 'error', description: 'a record or section cannot be decoded (unknown type, bad length, bad RAM flags...)' },
  E_TRUNCATED: { severity: 'error', description: 'the file ends in the middle of a record' },
  E_FOOTER: { severity: 'error', description: 'a section footer is missing or names another section id' },
  E_NO_EOF: { severity: 'error', description: 'the stream ends without the QEMU_VM_EOF record, or reaches it with the RAM section still open (no RAM END)' },
  E_HEADER_VERSION: { severity: 'error', description: 'mapped-ram header version is above 1 (QEMU refuses it)' },
  E_PAGE_SIZE: { severity: 'error', description: 'mapped-ram header page size is not the target page size' },
  E_IGNORED_OFFSETS: { severity: 'error', description: 'under x-ignore-shared, a header has one of bitmap_offset / pages_offset 0 and not the other (a block left out has both 0, as QEMU 11 writes it)' },
  E_IGNORED_NO_CAPABILITY: { severity: 'error', description: 'a header has bitmap_offset = pages_offset = 0 (a block left out) but the configuration lacks x-ignore-shared: QEMU would read the file header as its bitmap' },
  E_PAGES_ALIGNMENT: { severity: 'error', description: 'a page area is not aligned to the page size (QEMU refuses it)' },
  W_PAGES_ALIGNMENT: { severity: 'warning', description: 'a page area is page-aligned but not 1 MiB-aligned (QEMU always aligns to 1 MiB; O_DIRECT may fail)' },
  E_AREA_OUTSIDE_FILE: { severity: 'error', description: "a block's page area starts beyond the end of the file" },
  E_AREA_OVERLAP: { severity: 'error', description: 'a page area or bitmap overlaps another block\'s areas or the stream metadata' },
  E_BITMAP_OUTSIDE_FILE: { severity: 'error', description: "a block's bitmap does not lie inside the file" },
  E_BITMAP_TRAILING_BITS: { severity: 'error', description: 'bitmap bits beyond the last page of the block are set' },
  E_BITMAP_NOT_WRITTEN: { severity: 'error', description: 'the bitmap is all zero while the page area holds data: the save did not complete' },
  E_SHORT_FILE: { severity: 'error', description: 'the file ends inside a page area: pages under set bits are missing (data loss)' },
  E_HOLE_UNDER_SET_BIT: { severity: 'error', description: 'fewer bytes are allocated than set bits need: some present pages are holes (data loss)' },
  W_ZERO_PAGE_SET: { severity: 'warning', description: 'a set bit covers an all-zero page (QEMU skips zero pages unless zero-page-detection=none; or a hole)' },
  W_STALE_DATA: { severity: 'warning', description: 'non-zero data under clear bits (harmless for a fresh restore, wrong if loaded into a VM that already ran)' },
  W_NO_VMDESC: { severity: 'warning', description: 'no vmdesc JSON after the EOF record (device sections cannot be cross-checked)' },
  E_VMDESC_JSON: { severity: 'error', description: 'the vmdesc record is malformed: bad length or JSON' },
  E_DEVICE_MISMATCH: { severity: 'error', description: 'device sections in the stream do not match the vmdesc device list' },
  W_TRAILING_DATA: { severity: 'warning', description: 'bytes after the end of the migration stream' },
  W_UNCHECKED: { severity: 'warning', description: 'part of the stream could not be walked (e.g. an iterative device other than "ram"), or a digest was not computed (a stream block declaring more RAM than its file can have sent)' },
} as const satisfies Record<string, CheckCode>;

/** A check code name (E_… or W_…). */
export type Code = keyof typeof CHECK_CODES;

/** The severity of a check code. */
export function severityOf(code: Code): Severity {
  return CHECK_CODES[code].severity;
}
