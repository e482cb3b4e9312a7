export { extractAll, extractBlock, extractToStream, type ExtractOptions, type ExtractResult } from './extract.js';
export { blockFileName, blockPath } from './names.js';
