// Read-only qcow2: header, snapshot table, and each internal snapshot's VM state as a source.
export { decodeHeader, isQcow2Magic, QCOW2_MAGIC, type Qcow2Header, type CompressionType } from './header.js';
export type { Qcow2Snapshot } from './snapshot-table.js';
export { Qcow2Image } from './image.js';
export { VmStateSource, type ClusterMapping } from './vmstate.js';
export { checkLoadvmRefcounts } from './refcounts.js';
