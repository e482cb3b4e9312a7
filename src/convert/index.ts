export { convertMigration, type ConvertOptions, type ConvertResult, type MigrationFormat } from './convert.js';
export { streamToMappedRam, mappedRamToMappedRam, type ToMappedRamOptions } from './to-mapped-ram.js';
export { mappedRamToStream, type ToStreamOptions, type StreamSummary } from './to-stream.js';
export { ByteSink, FileSink, WritableSink } from './byte-sink.js';
/** Progress reports of a conversion. */
export type { Progress, ProgressListener } from './progress.js';
/** What becomes of a libvirt save's header. */
export type { LibvirtSaveOptions } from './libvirt-save.js';
