// Pure: a block's page bitmaps → columns of a fixed count → runs of columns with the same fill level.
// Work and output are O(bitmap bytes) and O(columns), whatever the guest size.

/** What a picture needs of one RAM block. */
export interface BlockMapInput {
  id: string;
  usedLength: number;
  pageSize: number;
  pages: number;
  /** Bit set = the file holds data for the page; null for an ignored block. */
  present: Uint8Array | null;
  /** Bit set = a stream sent the page more than once; null when the encoding cannot tell. */
  resent: Uint8Array | null;
  /** x-ignore-shared: the block's RAM is not in the file. */
  ignored: boolean;
}

/** Partial fill levels run 1..LEVELS-1; 0 = no page set, LEVELS = every page set. */
export const LEVELS = 8;

/** Consecutive pages [start, start+count) drawn with one level; `set` of them have the bit. */
export interface Segment {
  start: number;
  count: number;
  set: number;
  level: number;
}

/** One RAM block's row of the map: runs of columns with one fill level each (bandGeometry's result). */
export interface Band {
  id: string;
  usedLength: number;
  pageSize: number;
  pages: number;
  ignored: boolean;
  presentPages: number;
  resentPages: number;
  /** Cover [0, pages) in order (empty for an ignored block). */
  present: Segment[];
  /** Only the segments with resent pages. */
  resent: Segment[];
}

const POP = Uint8Array.from({ length: 256 }, (_, i) => {
  let n = 0;
  for (let b = i; b; b &= b - 1) n++;
  return n;
});

/** Set bits among bits [from, to) of a bitmap. */
export function countBits(bits: Uint8Array, from: number, to: number): number {
  let n = 0;
  let p = from;
  for (; p < to && p % 8; p++) n += (bits[Math.floor(p / 8)]! >> p % 8) & 1;
  const end = Math.floor(to / 8);
  for (let i = p / 8; i < end; i++) n += POP[bits[i]!]!;
  for (p = Math.max(p, end * 8); p < to; p++) n += (bits[Math.floor(p / 8)]! >> p % 8) & 1;
  return n;
}

/** First page of column `c` of `columns` over `pages` pages (columns hold ⌊⌋ or ⌈⌉ pages each). */
export function columnStart(c: number, columns: number, pages: number): number {
  return Math.floor((c * pages) / columns);
}

/** The level a run of `count` pages with `set` bits is drawn with. */
export function fillLevel(set: number, count: number): number {
  if (set === 0) return 0;
  if (set === count) return LEVELS;
  return 1 + Math.min(LEVELS - 2, Math.floor((set / count) * (LEVELS - 1)));
}

/** Segments of a bitmap over `pages` pages at `columns` columns (one page a column when pages are fewer). */
export function segments(bits: Uint8Array, pages: number, columns: number): Segment[] {
  const cols = Math.max(1, Math.min(columns, pages));
  const out: Segment[] = [];
  for (let c = 0; c < cols && pages > 0; c++) {
    const start = columnStart(c, cols, pages);
    const end = columnStart(c + 1, cols, pages);
    const set = countBits(bits, start, end);
    const level = fillLevel(set, end - start);
    const last = out[out.length - 1];
    if (last && last.level === level) {
      last.count += end - start;
      last.set += set;
    } else out.push({ start, count: end - start, set, level });
  }
  return out;
}

/** The band of one block at `columns` columns. */
export function bandGeometry(b: BlockMapInput, columns: number): Band {
  const present = b.present && !b.ignored ? segments(b.present, b.pages, columns) : [];
  const resent = b.resent && !b.ignored ? segments(b.resent, b.pages, columns).filter((s) => s.set > 0) : [];
  return {
    id: b.id,
    usedLength: b.usedLength,
    pageSize: b.pageSize,
    pages: b.pages,
    ignored: b.ignored,
    presentPages: present.reduce((n, s) => n + s.set, 0),
    resentPages: resent.reduce((n, s) => n + s.set, 0),
    present,
    resent,
  };
}
