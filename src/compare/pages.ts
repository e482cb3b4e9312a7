// Reads windows of one RAM block's guest-visible pages: only the span its presence bitmap covers,
// mapped-ram page areas with O_DIRECT from arena memory, other encodings through RamBlock.read.
import { FormatError } from '../format/errors.js';
import type { MigrationFile } from '../reader/migration-file.js';
import { DIRECT_ALIGN, pageSource, type PageSource as SourceReader } from '../reader/page-reader.js';
import { MappedRamBlock, type RamBlock } from '../reader/ram-block.js';

/** First and one-past-last set bit in [from, to), or null when none is set. */
export function setSpan(bits: Uint8Array, from: number, to: number): { lo: number; hi: number } | null {
  let lo = -1;
  for (let p = from; p < to; ) {
    if ((p & 7) === 0 && p + 8 <= to && bits[p >>> 3] === 0) {
      p += 8;
      continue;
    }
    if ((bits[p >>> 3]! >>> (p & 7)) & 1) {
      lo = p;
      break;
    }
    p++;
  }
  if (lo < 0) return null;
  let hi = to;
  while (hi > lo && !((bits[(hi - 1) >>> 3]! >>> ((hi - 1) & 7)) & 1)) hi--;
  return { lo, hi };
}

/** One input file's reading state: handles opened once and shared by its blocks. */
export class PageSource {
  /** Bytes of page data read so far (what the comparison cost). */
  bytesRead = 0;

  private constructor(
    readonly file: MigrationFile,
    private readonly direct: SourceReader | null,
    private readonly buffered: SourceReader,
  ) {}

  /** Page areas through the file's own source (a snapshot reads through its cluster mapping). */
  static async open(file: MigrationFile): Promise<PageSource> {
    const mapped = file.blocks.some((b) => b instanceof MappedRamBlock);
    const d = mapped ? await pageSource(file.source, true) : null;
    const buffered = d && !d.direct ? d : await pageSource(file.source, false);
    return new PageSource(file, d?.direct ? d : null, buffered);
  }

  async close(): Promise<void> {
    await this.direct?.close();
    await this.buffered.close();
  }

  /**
   * Guest-visible content of pages [p0, p0+n) of `block` into `into` (zeros where absent).
   * Only the span from the first to the last page present in `present` is read; returns its page count.
   */
  async read(block: RamBlock, present: Uint8Array, p0: number, n: number, into: Uint8Array): Promise<number> {
    const ps = block.pageSize;
    const span = setSpan(present, p0, p0 + n);
    if (!span) {
      into.fill(0, 0, n * ps);
      return 0;
    }
    const { lo, hi } = span;
    into.fill(0, 0, (lo - p0) * ps);
    into.fill(0, (hi - p0) * ps, n * ps);
    const dst = into.subarray((lo - p0) * ps, (hi - p0) * ps);
    if (block instanceof MappedRamBlock) {
      const pos = block.pagesOffset + lo * ps;
      const aligned = this.direct !== null && pos % DIRECT_ALIGN === 0 && dst.length % DIRECT_ALIGN === 0 && dst.byteOffset % DIRECT_ALIGN === 0;
      const got = await (aligned ? this.direct! : this.buffered).read(dst, dst.length, pos);
      if (got < dst.length) {
        const page = lo + Math.floor(got / ps);
        throw new FormatError(pos + got, `page ${page} of block ${JSON.stringify(block.id)} (its bitmap bit is set)`, 'end of file', 'truncated');
      }
      // Data under clear bits is not guest RAM: the guest sees zeros there.
      zeroAbsent(present, lo, hi, p0, ps, into);
    } else {
      await block.read(lo * ps, dst.length, dst);
    }
    this.bytesRead += dst.length;
    return hi - lo;
  }
}

function zeroAbsent(present: Uint8Array, lo: number, hi: number, p0: number, ps: number, into: Uint8Array): void {
  for (let p = lo; p < hi; p++) {
    if ((p & 7) === 0 && p + 8 <= hi && present[p >>> 3] === 0xff) {
      p += 7;
      continue;
    }
    if (!((present[p >>> 3]! >>> (p & 7)) & 1)) into.fill(0, (p - p0) * ps, (p - p0 + 1) * ps);
  }
}
