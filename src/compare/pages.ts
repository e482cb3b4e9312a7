// Reads windows of one RAM block's guest-visible pages: only the span its presence bitmap covers,
// through the file's open source (O_DIRECT from arena memory where it applies).
import { setSpan } from '../kernel/bit-runs.js';
import type { MigrationFile } from '../reader/migration-file.js';
import { PageReads } from '../reader/page-reader.js';
import type { RamBlock } from '../reader/ram-block.js';

/** One input file's reading state: the page reads opened once and shared by its blocks. */
export class PageSource {
  /** Bytes of page data read so far (what the comparison cost). */
  bytesRead = 0;

  private constructor(
    readonly file: MigrationFile,
    private readonly reads: PageReads,
  ) {}

  /** Page areas through the file's own source (a snapshot reads through its cluster mapping). */
  static async open(file: MigrationFile): Promise<PageSource> {
    return new PageSource(file, await PageReads.open(file.source, true));
  }

  /** Closes the O_DIRECT descriptor, if one was opened (the file stays open). */
  async close(): Promise<void> {
    await this.reads.close();
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
    await block.readPages(dst, lo, hi - lo, this.reads);
    this.bytesRead += dst.length;
    return hi - lo;
  }
}
