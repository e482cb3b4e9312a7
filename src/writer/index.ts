// The writer's public nouns; PageStager, OutputFile and the io descriptors stay internal.
export { MappedRamWriter, type MappedRamWriterOptions, type OutputPrefix, type WriteSummary } from './mapped-ram-writer.js';
export { layoutBlocks, placeBlock, type BlockLayout, type RamBlockSpec } from './layout.js';
export type { StagerOptions } from './page-stager.js';
export { withCapability, describeConfiguration, rewriteVmdescConfiguration } from './configuration.js';
export type { DirectIoMode } from '../io/direct-writer.js';
