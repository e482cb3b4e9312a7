// Public API of mram: format primitives → record codecs → reader → (writer, verify) ; kernel underneath.
export * from './format/constants.js';
export { FormatError, UsageError, type FormatErrorKind } from './format/errors.js';
export { escapeControl } from './format/escape.js';
export type { Configuration } from './codec/configuration.js';
export type { MappedRamHeader, RamBlockEntry } from './codec/ram.js';
export type { SectionHeader, SectionKind, Command } from './codec/section.js';
export type { LibvirtHeader } from './codec/libvirt.js';
export type { VmDescription, LocatedVmdesc } from './codec/vmdesc.js';
export { readRecords, type MigrationRecord, type ReadRecordsOptions, type StopKind } from './codec/records.js';
export { FileCursor, StreamCursor, Cursor } from './io/cursor.js';
export { FileSource } from './io/file-source.js';
export { MigrationFile, type OpenOptions, type SectionInfo, type DeviceInfo, type SectionType } from './reader/migration-file.js';
export { RamBlock, MappedRamBlock, StreamRamBlock } from './reader/ram-block.js';
export * from './kernel/index.js';
export * from './writer/index.js';
export * from './convert/index.js';
export * from './extract/index.js';
export * from './verify/index.js';
