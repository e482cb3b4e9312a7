export { MappedRamWriter, type MappedRamWriterOptions, type OutputPrefix, type WriteSummary } from './mapped-ram-writer.js';
export { layoutBlocks, placeBlock, type BlockLayout, type RamBlockSpec } from './layout.js';
export { PageStager, type StagerOptions } from './page-stager.js';
export { OutputFile, tempPathFor } from './output-file.js';
export { withCapability, describeConfiguration, rewriteVmdescConfiguration } from './configuration.js';
export { PageAreaFile, MainStreamFile, type DirectIoMode } from '../io/direct-writer.js';
