// A migration file's RAM as a picture: bitmaps from the reader, then the pure geometry and renderers.
import { escapeControl } from '../format/escape.js';
import type { MigrationFile } from '../reader/migration-file.js';
import { presenceBitmap, resentBitmap } from '../reader/presence.js';
import type { RamBlock } from '../reader/ram-block.js';
import { LEVELS, bandGeometry, segments, type BlockMapInput } from './geometry.js';
import { SVG_LAYOUT, renderSvg } from './svg.js';

/** What the picture needs of a block of a file of `fileSize` bytes: its presence and resend bitmaps, or that it is ignored. */
export function blockMapInput(block: RamBlock, fileSize: number): BlockMapInput {
  const ignored = block.ignored;
  return {
    id: block.id,
    usedLength: block.usedLength,
    pageSize: block.pageSize,
    pages: block.pages,
    ignored,
    present: ignored ? null : presenceBitmap(block, fileSize),
    resent: ignored ? null : resentBitmap(block, fileSize),
  };
}

/** The SVG of `mram map`: one band per RAM block of the file. */
export function ramMapSvg(file: MigrationFile): string {
  const bands = file.blocks.map((b) => bandGeometry(blockMapInput(b, file.size), SVG_LAYOUT.barWidth));
  return renderSvg(bands, `${escapeControl(file.path)} (${file.format})`);
}

// Eighths of a cell from the bottom: a column's share of present pages, ' ' none, '█' all.
const BAR_CHARS = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** A one-line occupancy bar of `width` cells (Unicode blocks); '░' throughout for an ignored block. */
export function occupancyBar(b: BlockMapInput, width: number): string {
  if (b.ignored || !b.present) return '░'.repeat(width);
  let out = '';
  for (const s of segments(b.present, b.pages, width)) {
    const cells = Math.round(((s.start + s.count) * width) / b.pages) - Math.round((s.start * width) / b.pages);
    out += BAR_CHARS[Math.round((s.level * 8) / LEVELS)]!.repeat(cells);
  }
  return out.padEnd(width);
}
