export { convertMigration, type ConvertOptions, type ConvertResult, type MigrationFormat } from './convert.js';
export { streamToMappedRam, mappedRamToMappedRam, type ToMappedRamOptions } from './to-mapped-ram.js';
export { mappedRamToStream, type ToStreamOptions, type StreamSummary } from './to-stream.js';
export { ByteSink, FileSink, WritableSink } from './byte-sink.js';
export type { Progress, ProgressListener } from './progress.js';
export type { LibvirtSaveOptions } from './libvirt-save.js';
