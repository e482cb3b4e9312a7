// Compares the guest RAM (and optionally the device state) of two migration files, block by block.
import { UsageError } from '../format/errors.js';
import type { Arena } from '../kernel/index.js';
import type { MigrationFile, DeviceInfo } from '../reader/migration-file.js';
import { withReaderArena } from '../reader/page-reader.js';
import { presenceBitmap } from '../reader/presence.js';
import type { RamBlock } from '../reader/ram-block.js';
import { setSpan } from '../kernel/bit-runs.js';
import { PageSource } from './pages.js';

/** One RAM block id of either file and how its pages compare. */
export interface BlockComparison {
  id: string;
  /** used_length in A / in B; null when the block is not in that file. */
  lengthA: number | null;
  lengthB: number | null;
  pageSize: number;
  /** Pages in both blocks with the same content (absent pages read as zeros). */
  equal: number;
  /** Pages non-zero in both files with different content. */
  differing: number;
  /** Pages non-zero in A whose counterpart in B reads as zeros or does not exist. */
  onlyInA: number;
  /** Pages non-zero in B whose counterpart in A reads as zeros or does not exist. */
  onlyInB: number;
  /** Guest byte offset of the block's first differing page (the shorter length for a length mismatch alone). */
  firstDifference: number | null;
  /** False when the comparison stopped at an earlier difference before this block was read to its end. */
  complete: boolean;
  /** x-ignore-shared: the block's RAM is in neither file ('both'), or in only one of them. */
  ignored: 'a' | 'b' | 'both' | null;
}

/** A device section (idstr + instance) of either file. */
export interface DeviceComparison {
  idstr: string;
  instanceId: number;
  status: 'equal' | 'different' | 'only-in-a' | 'only-in-b';
}

/** What compareMigrationFiles found (what `mram compare --json` prints). */
export interface CompareReport {
  identical: boolean;
  /** The first differing page in block order (A's order, then blocks only in B). */
  firstDifference: { block: string; offset: number } | null;
  blocks: BlockComparison[];
  /** Present when device state was compared. */
  devices: DeviceComparison[] | null;
  /** Page data read from each file. */
  bytesRead: { a: number; b: number };
}

/** Options of compareMigrationFiles. */
export interface CompareOptions {
  /** Stop at the first difference (the per-block counts are then partial); default false. */
  stopAtFirst?: boolean;
  /** Compare device sections by idstr and instance too; a difference makes the files differ. */
  devices?: boolean;
  /** Bytes per read (default 4 MiB). */
  chunkBytes?: number;
  /** Windows in flight (default 4; each has a read per file). */
  depth?: number;
  /** Called after each window read with the guest bytes compared so far and the total of all blocks. */
  progress?: (done: number, total: number) => void;
}

const DEFAULT_CHUNK = 4 << 20;
const DEFAULT_DEPTH = 4;

interface Side {
  source: PageSource;
  block: RamBlock;
  present: Uint8Array;
}

/** Compares two opened migration files; neither is modified. */
export async function compareMigrationFiles(a: MigrationFile, b: MigrationFile, opts: CompareOptions = {}): Promise<CompareReport> {
  // Pages after the point where a walk stopped are unknown: a partial map would compare as zeros.
  for (const f of [a, b]) if (!f.complete) throw new UsageError(`${f.path}: incomplete (${f.notes[0] ?? 'no EOF record'}): its guest RAM is not all known`);
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK;
  const depth = opts.depth ?? DEFAULT_DEPTH;
  const ids = [...a.blocks.map((x) => x.id), ...b.blocks.filter((x) => !a.blocks.some((y) => y.id === x.id)).map((x) => x.id)];
  const srcA = await PageSource.open(a);
  const srcB = await PageSource.open(b).catch(async (e) => {
    await srcA.close();
    throw e;
  });
  const total = ids.reduce((n, id) => n + Math.max(a.blocks.find((x) => x.id === id)?.usedLength ?? 0, b.blocks.find((x) => x.id === id)?.usedLength ?? 0), 0);
  let base = 0;
  const report: CompareReport = { identical: true, firstDifference: null, blocks: [], devices: null, bytesRead: { a: 0, b: 0 } };
  try {
    await withReaderArena(
      async (arena) => {
        for (const id of ids) {
          const ba = a.blocks.find((x) => x.id === id);
          const bb = b.blocks.find((x) => x.id === id);
          if (ba && bb && ba.pageSize !== bb.pageSize) throw new UsageError(`block ${JSON.stringify(id)} has page size ${ba.pageSize} in A and ${bb.pageSize} in B`);
          const stop = opts.stopAtFirst === true && report.firstDifference !== null;
          const c = emptyComparison(id, ba, bb);
          report.blocks.push(c);
          const ia = ba !== undefined && ba.ignored;
          const ib = bb !== undefined && bb.ignored;
          c.ignored = ia && ib ? 'both' : ia ? 'a' : ib ? 'b' : null;
          // An ignored block's RAM lives outside the file: nothing to read; ignored on one side only is a difference.
          if (c.ignored) {
            c.complete = true;
            if (c.ignored !== 'both' && ba && bb) c.firstDifference = 0;
          } else if (!stop) {
            const sa = ba && { source: srcA, block: ba, present: presenceBitmap(ba, a.size) };
            const sb = bb && { source: srcB, block: bb, present: presenceBitmap(bb, b.size) };
            const progress = opts.progress && ((done: number) => opts.progress!(base + done, total));
            await compareBlock(c, sa, sb, arena, { chunkBytes, depth, stopAtFirst: opts.stopAtFirst === true, progress });
          }
          base += Math.max(c.lengthA ?? 0, c.lengthB ?? 0);
          if (c.lengthA !== c.lengthB) c.firstDifference ??= Math.min(c.lengthA ?? 0, c.lengthB ?? 0);
          if (c.firstDifference !== null && report.firstDifference === null) report.firstDifference = { block: id, offset: c.firstDifference };
        }
      },
      { chunkBytes, depth: 2 * depth },
    );
    if (opts.devices) report.devices = await compareDevices(a, b);
  } finally {
    report.bytesRead = { a: srcA.bytesRead, b: srcB.bytesRead };
    await srcA.close();
    await srcB.close();
  }
  report.identical = report.firstDifference === null && !(report.devices ?? []).some((d) => d.status !== 'equal');
  return report;
}

function emptyComparison(id: string, ba: RamBlock | undefined, bb: RamBlock | undefined): BlockComparison {
  const pageSize = (ba ?? bb)!.pageSize;
  return { id, lengthA: ba?.usedLength ?? null, lengthB: bb?.usedLength ?? null, pageSize, equal: 0, differing: 0, onlyInA: 0, onlyInB: 0, firstDifference: null, complete: false, ignored: null };
}

interface Window {
  p0: number;
  n: number;
  a: Uint8Array | null;
  b: Uint8Array | null;
}

/** Pages [0, common) in both blocks, then the longer block's tail against nothing. */
async function compareBlock(
  c: BlockComparison,
  sa: Side | undefined,
  sb: Side | undefined,
  arena: Arena,
  o: { chunkBytes: number; depth: number; stopAtFirst: boolean; progress?: (done: number) => void },
): Promise<void> {
  const ps = c.pageSize;
  const pagesA = sa?.block.pages ?? 0;
  const pagesB = sb?.block.pages ?? 0;
  const common = Math.min(pagesA, pagesB);
  // Whole bitmap bytes per window, so the presence tests work on bytes.
  const windowPages = Math.max(8, Math.floor(o.chunkBytes / ps / 8) * 8);
  const ranges: [number, number, Side | undefined, Side | undefined][] = [
    [0, common, sa, sb],
    [common, Math.max(pagesA, pagesB), pagesA > common ? sa : undefined, pagesB > common ? sb : undefined],
  ];
  const scanA = arena.alloc(windowPages / 8);
  const scanB = arena.alloc(windowPages / 8);
  try {
    for (const [from, to, x, y] of ranges) {
      if (from >= to) continue;
      let covered = to;
      let diffs = 0;
      for await (const w of readWindows(from, to, windowPages, x, y, arena, o.depth)) {
        const d = classify(c, w, ps, scanA.view, scanB.view, arena);
        diffs += d;
        o.progress?.((w.p0 + w.n) * ps);
        if (d && o.stopAtFirst) {
          covered = w.p0 + w.n;
          break;
        }
      }
      // In both blocks, every page not found differing is equal: the windows never read were zeros on both sides.
      if (x && y) c.equal += covered - from - diffs;
      if (covered < to) return;
    }
    c.complete = true;
  } finally {
    scanA.free();
    scanB.free();
  }
}

/** Counts the window's differing pages into `c` and returns how many there were (equal pages are the rest). */
function classify(c: BlockComparison, w: Window, ps: number, bitsA: Uint8Array, bitsB: Uint8Array, arena: Arena): number {
  const both = w.a !== null && w.b !== null;
  const len = w.n * ps;
  const bufA = w.a && Buffer.from(w.a.buffer, w.a.byteOffset, len);
  const bufB = w.b && Buffer.from(w.b.buffer, w.b.byteOffset, len);
  // Bulk first: identical windows (the common case) cost one memcmp.
  if (both && bufA!.equals(bufB!)) return 0;
  if (w.a) arena.scan(w.a.subarray(0, len), ps, bitsA, 0);
  if (w.b) arena.scan(w.b.subarray(0, len), ps, bitsB, 0);
  let first = -1;
  let diffs = 0;
  for (let i = 0; i < w.n; i++) {
    const nzA = w.a !== null && ((bitsA[i >>> 3]! >>> (i & 7)) & 1) === 1;
    const nzB = w.b !== null && ((bitsB[i >>> 3]! >>> (i & 7)) & 1) === 1;
    if (!nzA && !nzB) continue; // zeros on both sides, or a zero page past the end of the shorter block
    if (nzA && nzB) {
      if (bufA!.compare(bufB!, i * ps, (i + 1) * ps, i * ps, (i + 1) * ps) === 0) continue;
      c.differing++;
    } else if (nzA) c.onlyInA++;
    else c.onlyInB++;
    diffs++;
    if (first < 0) first = i;
  }
  if (first >= 0) c.firstDifference ??= (w.p0 + first) * ps;
  return diffs;
}

/** Windows of pages [from, to) with any page present on either side, read ahead `depth` windows deep. */
async function* readWindows(from: number, to: number, windowPages: number, sa: Side | undefined, sb: Side | undefined, arena: Arena, depth: number): AsyncGenerator<Window, void, undefined> {
  const ps = (sa ?? sb)!.block.pageSize;
  const slots = Array.from({ length: depth }, () => ({
    a: sa ? arena.alloc(windowPages * ps) : null,
    b: sb ? arena.alloc(windowPages * ps) : null,
    pending: null as Promise<Window> | null,
  }));
  const starts = windowStarts(from, to, windowPages, sa?.present, sb?.present);
  let issued = 0;
  const issue = (slot: (typeof slots)[number]): boolean => {
    const next = starts.next();
    if (next.done) return false;
    const p0 = next.value;
    const n = Math.min(windowPages, to - p0);
    const a = slot.a?.view ?? null;
    const b = slot.b?.view ?? null;
    slot.pending = Promise.all([
      sa ? sa.source.read(sa.block, sa.present, p0, n, a!) : 0,
      sb ? sb.source.read(sb.block, sb.present, p0, n, b!) : 0,
    ]).then(() => ({ p0, n, a, b }));
    issued++;
    return true;
  };
  try {
    for (const s of slots) if (!issue(s)) break;
    for (let k = 0; k < issued; k++) {
      const slot = slots[k % depth]!;
      yield await slot.pending!;
      issue(slot);
    }
  } finally {
    // Reads still in flight write into arena regions: let them land before the regions are reused.
    await Promise.allSettled(slots.map((s) => s.pending));
    for (const s of slots) {
      s.a?.free();
      s.b?.free();
    }
  }
}

/** Window starts in [from, to) where either bitmap has a set bit; a window with none costs nothing. */
function* windowStarts(from: number, to: number, windowPages: number, pa: Uint8Array | undefined, pb: Uint8Array | undefined): Generator<number> {
  for (let p0 = from; p0 < to; p0 += windowPages) {
    const end = Math.min(to, p0 + windowPages);
    if ((pa && setSpan(pa, p0, end)) || (pb && setSpan(pb, p0, end))) yield p0;
  }
}

/** Device sections matched by idstr and instance; payload bytes compared. */
async function compareDevices(a: MigrationFile, b: MigrationFile): Promise<DeviceComparison[]> {
  const key = (d: DeviceInfo) => `${d.idstr}\u0000${d.instanceId}`;
  const inB = new Map(b.devices.map((d) => [key(d), d]));
  const out: DeviceComparison[] = [];
  for (const da of a.devices) {
    const db = inB.get(key(da));
    inB.delete(key(da));
    if (!db) {
      out.push({ idstr: da.idstr, instanceId: da.instanceId, status: 'only-in-a' });
      continue;
    }
    const same = da.payloadLength === db.payloadLength && Buffer.from(await payload(a, da)).equals(await payload(b, db));
    out.push({ idstr: da.idstr, instanceId: da.instanceId, status: same ? 'equal' : 'different' });
  }
  for (const db of inB.values()) out.push({ idstr: db.idstr, instanceId: db.instanceId, status: 'only-in-b' });
  return out;
}

async function payload(f: MigrationFile, d: DeviceInfo): Promise<Uint8Array> {
  const buf = new Uint8Array(d.payloadLength);
  await f.source.readInto(buf, d.payloadOffset);
  return buf;
}
