export { Arena, REGION_ALIGN, type ArenaOptions, type ArenaRegion, type ScanResult } from './arena.js';
export { bitRuns, countPresent, presentRuns, type PageRun } from './bit-runs.js';
export { bitmapBytes, scanPages, zeroRuns } from './scanner.js';
