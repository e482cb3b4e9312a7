// Where a file holds data: its allocated extents from the kernel's FIEMAP, through e2fsprogs' `filefrag`
// (Node exposes neither SEEK_DATA nor the ioctl). Callers fall back to reading everything on null.
import { childProcess } from './builtins.js';

/** A byte range [start, end) of a file. */
export interface ByteRange {
  start: number;
  end: number;
}

// A file with ~1M extents prints ~100 MiB; such a file is dense enough that reading it all costs less.
const MAX_OUTPUT = 64 << 20;
const TIMEOUT_MS = 10_000;
const EXTENT_LINE = /^\s*\d+:\s*(\d+)\.\.\s*(\d+):/;

/**
 * The allocated byte ranges of the regular file at `path`, in order and merged, as FIEMAP reports
 * them (delayed-allocation extents included); null when that cannot be known here (no `filefrag`,
 * a file system without FIEMAP such as tmpfs, too many extents).
 */
export async function dataRanges(path: string): Promise<ByteRange[] | null> {
  const out = await new Promise<string | null>((resolve) => {
    // -b1: offsets in bytes; -e: one line per extent; LC_ALL=C: the column layout parsed below.
    childProcess().execFile('filefrag', ['-v', '-e', '-b1', '--', path], { encoding: 'utf8', maxBuffer: MAX_OUTPUT, timeout: TIMEOUT_MS, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout) =>
      resolve(err ? null : stdout),
    );
  });
  return out === null ? null : parseFilefrag(out);
}

/** Extent lines of `filefrag -v -e -b1` (logical first..last byte, inclusive) as merged ranges. */
export function parseFilefrag(out: string): ByteRange[] | null {
  const ranges: ByteRange[] = [];
  let extents = false;
  for (const line of out.split('\n')) {
    if (line.startsWith(' ext:')) extents = true;
    const m = extents ? EXTENT_LINE.exec(line) : null;
    if (!m) continue;
    const start = Number(m[1]);
    const end = Number(m[2]) + 1;
    if (!Number.isSafeInteger(end) || end < start) return null;
    const last = ranges[ranges.length - 1];
    // FIEMAP lists extents in file order; anything else is output this parser does not know.
    if (last && start < last.start) return null;
    if (last && start <= last.end) last.end = Math.max(last.end, end);
    else ranges.push({ start, end });
  }
  // No extent table at all means the output was not what this parser knows.
  return extents ? ranges : null;
}

/** Whether [start, end) meets any of the sorted `ranges` (binary search). */
export function overlapsAny(ranges: readonly ByteRange[], start: number, end: number): boolean {
  let lo = 0;
  let hi = ranges.length;
  // First range whose end is past `start`.
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.end <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < ranges.length && ranges[lo]!.start < end;
}
