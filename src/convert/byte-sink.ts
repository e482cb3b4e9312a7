// Sequential outputs for plain streams: a file (temporary name, renamed when complete) or any
// Writable such as stdout (backpressure respected).
import { promises as fsp } from 'node:fs';
import type { Writable } from 'node:stream';
import { OutputFile } from '../writer/output-file.js';
import { writeAllAt, writeFailure } from '../io/file-io.js';

const BUFFER = 4 << 20;

/** A buffered sequential output of a plain stream. */
export abstract class ByteSink {
  protected buf = new Uint8Array(BUFFER);
  protected used = 0;
  /** Bytes handed to the output so far. */
  bytesWritten = 0;

  /** Copies `bytes` into the buffer, flushing first when they do not fit. */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.used + bytes.length > this.buf.length) await this.flush();
    if (bytes.length > this.buf.length) {
      await this.emit(bytes);
      this.bytesWritten += bytes.length;
      return;
    }
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  /** Room left before the next flush (lets hot loops write without awaiting). */
  get room(): number {
    return this.buf.length - this.used;
  }

  /** Synchronous append; the caller checked `room`. */
  put(bytes: Uint8Array): void {
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  /** Writes out what is buffered. */
  async flush(): Promise<void> {
    if (this.used === 0) return;
    const out = this.buf.subarray(0, this.used);
    await this.emit(out);
    this.bytesWritten += out.length;
    // The Writable may still hold `out`: continue in a fresh buffer.
    this.buf = new Uint8Array(BUFFER);
    this.used = 0;
  }

  protected abstract emit(bytes: Uint8Array): Promise<void>;
  /** Flushes and makes the output final. */
  abstract finish(): Promise<void>;
  /** Drops the output (a file sink removes its temporary file). */
  abstract abort(): Promise<void>;
}

/** A file written under a temporary name, renamed into place when finished. */
export class FileSink extends ByteSink {
  private position = 0;

  private constructor(
    private readonly out: OutputFile,
    private readonly handle: fsp.FileHandle,
    private readonly seal: Uint8Array | null,
  ) {
    super();
  }

  /** `seal`: bytes written at offset 0 once everything else is durable (libvirt's "Save" magic). */
  static async create(path: string, force = false, seal: Uint8Array | null = null): Promise<FileSink> {
    const out = await OutputFile.create(path, force);
    try {
      return new FileSink(out, await fsp.open(out.tempPath, 'r+'), seal);
    } catch (e) {
      await out.discard();
      throw e;
    }
  }

  protected override async emit(bytes: Uint8Array): Promise<void> {
    await writeAllAt(this.handle, bytes, this.position, this.out.target);
    this.position += bytes.length;
  }

  override async finish(): Promise<void> {
    try {
      await this.flush();
      // Some filesystems (NFS, thin provisioning) report ENOSPC only here.
      await this.datasync();
      if (this.seal) {
        await writeAllAt(this.handle, this.seal, 0, this.out.target);
        await this.datasync();
      }
      await this.handle.close();
      await this.out.commit();
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  private datasync(): Promise<void> {
    return this.handle.datasync().catch((e) => {
      throw writeFailure(e, this.out.target);
    });
  }

  override async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await this.out.discard();
  }
}

/** Any Writable (e.g. stdout), with backpressure. */
export class WritableSink extends ByteSink {
  private error: Error | null = null;

  constructor(private readonly stream: Writable | NodeJS.WritableStream) {
    super();
    stream.on('error', (e: Error) => {
      this.error ??= e;
    });
  }

  protected override async emit(bytes: Uint8Array): Promise<void> {
    if (this.error) throw writeFailure(this.error, 'standard output');
    if (!this.stream.write(bytes)) {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error) => {
          this.stream.off('drain', done);
          this.stream.off('error', done);
          if (e) reject(writeFailure(e, 'standard output'));
          else resolve();
        };
        this.stream.on('drain', done);
        this.stream.on('error', done);
      });
    }
  }

  override async finish(): Promise<void> {
    await this.flush();
    // A failed write surfaces on the stream's next tick; wait for it before declaring success.
    await new Promise<void>((resolve) => this.stream.write(new Uint8Array(0), () => resolve()));
    if (this.error) throw writeFailure(this.error, 'standard output');
  }

  override async abort(): Promise<void> {
    this.used = 0;
  }
}
