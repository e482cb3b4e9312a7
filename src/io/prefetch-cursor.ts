// A file cursor for reading a whole stream front to back: large reads straight into the buffer,
// and the next one already in flight while the current bytes are parsed (disk and parser overlap).
import { FileCursor } from './cursor.js';
import type { PositionalSource } from './source.js';

/** Bytes per read. */
const CHUNK = 2 << 20;
/** Default buffer: several chunks, so moving the unread tail to the front is rare (1 in 7 chunks). */
export const PREFETCH_BUFFER = 8 * CHUNK;

/** A FileCursor that reads the next buffer while the current one is parsed. */
export class PrefetchFileCursor extends FileCursor {
  /** The read in flight: it fills buf[into, into + length) with the bytes at file offset `at`. */
  private next: { at: number; into: number; done: Promise<number> } | null = null;

  constructor(source: PositionalSource, offset: number) {
    super(source, offset);
    this.buf = new Uint8Array(PREFETCH_BUFFER);
  }

  override async useBuffer(view: Uint8Array): Promise<void> {
    await this.settle();
    await super.useBuffer(view);
  }

  protected override async fill(n: number): Promise<number> {
    const size = this.source.size;
    while (this.end - this.start < n) {
      const at = this.bufOffset + this.end;
      if (at >= size) break;
      let got: number;
      const next = this.next;
      // After a seek the read in flight may be for other bytes; it lands beyond `end` either way.
      if (next && next.at === at && next.into === this.end) {
        this.next = null;
        got = await next.done;
      } else {
        await this.settle();
        this.makeRoom(Math.max(n, CHUNK));
        const want = Math.min(this.room(), size - at, Math.max(n - (this.end - this.start), CHUNK));
        got = await this.source.readInto(this.buf.subarray(this.end, this.end + want), at);
      }
      if (got === 0) break;
      this.end += got;
      this.prefetch();
    }
    return this.end - this.start;
  }

  private room(): number {
    return this.buf.length - this.end;
  }

  /** Room for `want` more bytes after `end`: moves the unread tail to the front, or grows. */
  private makeRoom(want: number): void {
    if (this.room() >= Math.min(want, CHUNK) && this.end - this.start + want <= this.buf.length) return;
    this.compact(this.end - this.start + want);
  }

  private prefetch(): void {
    const at = this.bufOffset + this.end;
    if (at >= this.source.size) return;
    this.makeRoom(CHUNK);
    const into = this.end;
    const done = this.source.readInto(this.buf.subarray(into, into + Math.min(CHUNK, this.room(), this.source.size - at)), at);
    // A failure surfaces when the bytes are needed; a discarded read's failure does not matter.
    done.catch(() => undefined);
    this.next = { at, into, done };
  }

  /** Waits for the read in flight and forgets it (it owns part of the buffer until it is done). */
  private async settle(): Promise<void> {
    const next = this.next;
    this.next = null;
    if (next) await next.done.catch(() => 0);
  }
}
