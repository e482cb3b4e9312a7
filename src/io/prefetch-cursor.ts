// A file cursor for reading a whole stream front to back: large reads, and the next one already
// in flight while the current chunk is parsed (the disk and the parser overlap).
import { FileCursor } from './cursor.js';
import type { FileSource } from './file-source.js';

const CHUNK = 4 << 20;

export class PrefetchFileCursor extends FileCursor {
  private readonly spare = new Uint8Array(CHUNK);
  private next: { at: number; done: Promise<number> } | null = null;

  constructor(source: FileSource, offset: number) {
    super(source, offset);
    this.buf = new Uint8Array(2 * CHUNK);
  }

  protected override async fill(n: number): Promise<number> {
    const size = this.source.size;
    while (this.end - this.start < n) {
      const at = this.bufOffset + this.end;
      if (at >= size) break;
      let got: number;
      if (this.next?.at === at) got = await this.next.done;
      else {
        // A seek moved us: let the stale read finish (it owns `spare`), then read here.
        if (this.next) await this.next.done.catch(() => 0);
        got = await this.source.readInto(this.spare, at);
      }
      this.next = null;
      if (got === 0) break;
      if (this.end + got > this.buf.length) this.compact(this.end - this.start + got);
      this.buf.set(this.spare.subarray(0, got), this.end);
      this.end += got;
      if (at + got < size) this.next = { at: at + got, done: this.source.readInto(this.spare, at + got) };
    }
    return this.end - this.start;
  }
}
