// Checks on where mapped-ram blocks put their bitmaps and page areas, and on the bitmaps themselves.
import { MAPPED_RAM_FILE_OFFSET_ALIGNMENT } from '../format/constants.js';
import { hex } from '../format/errors.js';
import { hasNoAreas } from '../codec/ram.js';
import { escapeControl } from '../format/escape.js';
import type { FileSource } from '../io/file-source.js';
import { bitmapBytes } from '../kernel/index.js';
import type { Findings } from './findings.js';
import type { BlockLayout, StreamMap } from './walk.js';

/** A mapped-ram block whose bitmap could be read. */
export interface MappedBlock {
  layout: BlockLayout;
  id: string;
  pageSize: number;
  pages: number;
  usedLength: number;
  bitmapOffset: number;
  pagesOffset: number;
  /** The bitmap as stored (whole 64-bit words). */
  bitmap: Uint8Array;
}

interface Region {
  start: number;
  end: number;
  what: string;
  block?: string;
}

const name = (s: string) => `"${escapeControl(s)}"`;

/** Runs the layout checks and reads every bitmap that lies inside the file. */
export async function checkLayout(source: FileSource, map: StreamMap, findings: Findings, prefix: Region | null): Promise<MappedBlock[]> {
  const regions: Region[] = map.metadata.map((s) => ({ ...s, what: 'stream metadata' }));
  if (prefix && prefix.end > prefix.start) regions.push(prefix);
  const out: MappedBlock[] = [];
  for (const layout of map.blocks) {
    const h = layout.entry.mappedRam;
    // A block left out (0/0) has no areas to place; the walk judged its header.
    if (!h || hasNoAreas(h)) continue;
    const id = layout.entry.idstr;
    const pages = layout.entry.usedLength / layout.pageSize;
    const bsize = bitmapBytes(pages);
    const at = h.headerOffset;
    if (h.pagesOffset % layout.pageSize !== 0) {
      findings.add('E_PAGES_ALIGNMENT', at + 20, `page area of block ${name(id)} at ${hex(h.pagesOffset)} is not aligned to the page size ${layout.pageSize}`, id);
    } else if (h.pagesOffset % MAPPED_RAM_FILE_OFFSET_ALIGNMENT !== 0) {
      findings.add('W_PAGES_ALIGNMENT', at + 20, `page area of block ${name(id)} at ${hex(h.pagesOffset)} is page-aligned but not 1 MiB-aligned`, id);
    }
    if (h.pagesOffset >= source.size && layout.entry.usedLength > 0) {
      findings.add('E_AREA_OUTSIDE_FILE', at + 20, `page area of block ${name(id)} starts at ${hex(h.pagesOffset)}, beyond the end of the file (${hex(source.size)})`, id);
    }
    regions.push({ start: h.pagesOffset, end: h.pagesOffset + layout.entry.usedLength, what: `page area of ${name(id)}`, block: id });
    const bitmapEnd = h.bitmapOffset + bsize;
    if (!Number.isSafeInteger(bitmapEnd) || bitmapEnd > source.size) {
      findings.add('E_BITMAP_OUTSIDE_FILE', at + 12, `bitmap of block ${name(id)} (${bsize} bytes at ${Number.isFinite(h.bitmapOffset) ? hex(h.bitmapOffset) : 'an offset beyond 2^53'}) does not lie inside the file (${hex(source.size)} bytes)`, id);
      continue;
    }
    regions.push({ start: h.bitmapOffset, end: bitmapEnd, what: `bitmap of ${name(id)}`, block: id });
    // Bounded by the file size, checked just above.
    const bitmap = new Uint8Array(bsize);
    await source.readInto(bitmap, h.bitmapOffset);
    checkTrailingBits(bitmap, pages, h.bitmapOffset, id, findings);
    out.push({ layout, id, pageSize: layout.pageSize, pages, usedLength: layout.entry.usedLength, bitmapOffset: h.bitmapOffset, pagesOffset: h.pagesOffset, bitmap });
  }
  checkOverlaps(regions, findings);
  return out;
}

function checkTrailingBits(bitmap: Uint8Array, pages: number, offset: number, id: string, findings: Findings): void {
  for (let i = pages >>> 3; i < bitmap.length; i++) {
    const mask = i === pages >>> 3 ? 0xff & ~((1 << (pages & 7)) - 1) : 0xff;
    if (bitmap[i]! & mask) {
      findings.add('E_BITMAP_TRAILING_BITS', offset + i, `bitmap of block ${name(id)} has bits set beyond its ${pages} pages`, id);
      return;
    }
  }
}

/** Sweep over regions sorted by start: any region starting before the furthest end so far overlaps it. */
function checkOverlaps(regions: Region[], findings: Findings): void {
  const sorted = regions.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start || a.end - b.end);
  let widest: Region | null = null;
  for (const r of sorted) {
    if (widest && r.start < widest.end) {
      findings.add('E_AREA_OVERLAP', r.start, `${r.what} [${hex(r.start)}, ${Number.isFinite(r.end) ? hex(r.end) : '2^53+'}) overlaps ${widest.what} [${hex(widest.start)}, ${Number.isFinite(widest.end) ? hex(widest.end) : '2^53+'})`, r.block ?? widest.block);
    }
    if (!widest || r.end > widest.end) widest = r;
  }
}
