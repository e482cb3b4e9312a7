export { bandGeometry, columnStart, countBits, fillLevel, segments, LEVELS, type Band, type BlockMapInput, type Segment } from './geometry.js';
export { renderSvg, escapeXml, SVG_LAYOUT, BAND_HEIGHT, COLORS } from './svg.js';
export { blockMapInput, occupancyBar, ramMapSvg } from './map.js';
