export { Arena, REGION_ALIGN, type ArenaOptions, type ArenaRegion, type ScanResult } from './arena.js';
export {
  bitmapBytes,
  bitRuns,
  countPresent,
  presentRuns,
  scanPages,
  zeroRuns,
  type PageRun,
} from './scanner.js';
