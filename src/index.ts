// Public API of mram: exactly what README.md's "API" section lists (one line per export there). Internals
// (cursors, stagers, output files, arena pools, record walkers, const enums) stay in their modules.

// Errors and terminal output
export { FormatError, IgnoredBlockError, UsageError, type FormatErrorKind } from './format/errors.js';
export { escapeControl } from './format/escape.js';

// The format's records, as MigrationFile exposes them
export type { Configuration } from './codec/configuration.js';
export type { MappedRamHeader, RamBlockEntry } from './codec/ram.js';
export type { SectionHeader, SectionKind, Command } from './codec/section.js';
export type { LibvirtHeader } from './codec/libvirt.js';
export type { VmDescription, VmsdDescription, LocatedVmdesc } from './codec/vmdesc.js';
export type { MigrationRecord, StopKind } from './codec/records.js';
export { decode, type Decoded, type Span } from './codec/decode.js';
export { encode, type EncodeOptions } from './codec/encode.js';
export { StreamState, type StreamStateOptions, type Phase, type EncodingRule, type EncodingMismatch } from './codec/state.js';

// Reading
export { MigrationFile, type OpenOptions, type SectionInfo, type DeviceInfo, type SectionType } from './reader/migration-file.js';
export { RamBlock, MappedRamBlock, StreamRamBlock } from './reader/ram-block.js';
export { detectFormat, type MigrationFormat } from './reader/detect.js';
export { findStreamStart, StreamElsewhereError, STREAM_SEARCH_LIMIT } from './reader/find-stream.js';
export { FileSource, type Reader } from './io/file-source.js';
export { readerArena, type ChunkOptions, type PageChunk, type PageReaderOptions } from './reader/page-reader.js';
export type { PositionalSource } from './io/source.js';

// qcow2 internal snapshots
export { listSnapshots, openSnapshotSource, type SnapshotSummary } from './reader/snapshot.js';
export { Qcow2Image, VmStateSource, type Qcow2Header, type CompressionType, type Qcow2Snapshot, type ClusterMapping } from './qcow2/index.js';

// Writing, converting, checking, extracting, comparing, mapping
export { MappedRamWriter, type MappedRamWriterOptions, type OutputPrefix, type WriteSummary } from './writer/mapped-ram-writer.js';
export type { RamBlockSpec, BlockLayout } from './writer/layout.js';
export { convertMigration, type ConvertOptions, type ConvertResult } from './convert/convert.js';
export type { Progress, ProgressListener } from './convert/progress.js';
export type { LibvirtSaveOptions } from './convert/libvirt-save.js';
export type { DirectIoMode } from './io/direct-writer.js';
export { contentDigest, BlockContentHasher, combineContentDigests, CONTENT_DIGEST_MAGIC, type ContentDigest } from './digest/content-digest.js';
export { verifyFile, VerifyExit, type VerifyOptions, type VerifyReport } from './verify/verify.js';
export { CHECK_CODES, type CheckCode, type Code as CheckCodeName, type Severity } from './verify/codes.js';
export type { Finding } from './verify/findings.js';
export { extractAll, extractBlock, type ExtractOptions, type ExtractResult } from './extract/extract.js';
export { compareMigrationFiles, type CompareReport, type CompareOptions, type BlockComparison, type DeviceComparison } from './compare/compare.js';
export { ramMapSvg, blockMapInput, occupancyBar, bandGeometry, renderSvg, type Band, type BlockMapInput, type Segment } from './map/index.js';

// The wasm kernel
export { Arena, scanPages, zeroRuns, presentRuns, countPresent, type ArenaOptions, type ArenaRegion, type ScanResult, type PageRun } from './kernel/index.js';
export type { WasmMemory } from './kernel/wasm.js';
