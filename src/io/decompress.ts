// Compressed save payloads (libvirt's gzip … zstd formats), decompressed as a stream by the program
// libvirt itself runs (`zstd -dc` …): no decompressed temporary file is ever written.
import type { ChildProcess } from 'node:child_process';
import { childProcess } from './builtins.js';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { FormatError } from '../format/errors.js';
import { FileSource, type Reader } from './file-source.js';

/** The compressed formats and their decompressing command lines (as libvirt runs them). */
const COMMANDS: Record<string, string[]> = {
  gzip: ['gzip', '-dc'],
  bzip2: ['bzip2', '-dc'],
  xz: ['xz', '-dc'],
  lzop: ['lzop', '-dc', '--ignore-warn'],
  zstd: ['zstd', '-dc'],
};

/** True for a format name this module decompresses. */
export function isCompressedFormat(format: string): boolean {
  return Object.hasOwn(COMMANDS, format);
}

/** The command line for `format`; one clear line when its program is not on PATH. */
export function decompressCommand(format: string): string[] {
  const cmd = COMMANDS[format];
  if (!cmd) throw new Error(`no decompressor for format ${JSON.stringify(format)}`);
  if (!onPath(cmd[0]!)) throw Object.assign(new Error(`a ${format} save: install ${cmd[0]} to read it`), { code: 'ENOPROG' });
  return cmd;
}

function onPath(program: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, program), fs.constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** A running decompressor reading `file` from `offset` on. */
class Decompressor {
  private readonly child: ChildProcess;
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly exit: Promise<[number | null, NodeJS.Signals | null]>;
  private stderr = '';
  private finished = false;

  constructor(
    private readonly cmd: string[],
    private readonly file: string,
    private readonly offset: number,
  ) {
    // The program reads the file itself (an inherited descriptor positioned at `offset`): no copy through Node.
    const fd = fs.openSync(file, 'r');
    try {
      skipBytes(fd, offset);
      this.child = childProcess().spawn(cmd[0]!, cmd.slice(1), { stdio: [fd, 'pipe', 'pipe'] });
    } finally {
      fs.closeSync(fd);
    }
    this.exit = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.stderr ||= e.message;
        resolve([null, null]);
      });
      this.child.on('close', (code, signal) => resolve([code, signal]));
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += d.toString('utf8');
    });
    this.chunks = (this.child.stdout as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** The next decompressed chunk; null at the end, after the program exited with status 0. */
  async next(): Promise<Buffer | null> {
    const r = await this.chunks.next();
    if (!r.done) return r.value;
    this.finished = true;
    const [code, signal] = await this.exit;
    if (code !== 0) {
      const why = this.stderr.trim().split('\n').pop()?.trim() || (signal ? `killed by ${signal}` : `exit status ${code}`);
      // A partial result never passes as complete: a failed program fails the read that reaches its end.
      throw new FormatError(this.offset, `${this.cmd[0]} data that ${this.cmd.join(' ')} decompresses`, `an error (${why})`, 'truncated');
    }
    return null;
  }

  /** Stops the program early (its remaining output is not wanted). */
  stop(): void {
    if (this.finished) return;
    this.finished = true;
    this.child.stdout!.destroy();
    this.child.kill('SIGTERM');
  }
}

/** Moves the descriptor's file position to `n` (the child inherits the position). */
function skipBytes(fd: number, n: number): void {
  const buf = Buffer.allocUnsafe(Math.min(n, 1 << 20) || 1);
  let left = n;
  while (left > 0) {
    const got = fs.readSync(fd, buf, 0, Math.min(left, buf.length), null);
    if (got === 0) break;
    left -= got;
  }
}

/**
 * One sequential pass over the decompressed bytes of `file` after `offset` (e.g. for a
 * StreamCursor). The iteration fails at its end when the program reported an error.
 */
export class DecompressedStream implements AsyncIterable<Uint8Array> {
  private readonly d: Decompressor;
  private ended = false;

  constructor(file: string, offset: number, format: string) {
    this.d = new Decompressor(decompressCommand(format), file, offset);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      for (let c = await this.d.next(); c; c = await this.d.next()) yield c;
    } finally {
      this.ended = true;
    }
  }

  /**
   * After the reader failed: the decompressor's own error when it fails on the rest of the data
   * (corrupt data reads as garbage before the program notices), else null.
   */
  async failure(): Promise<Error | null> {
    try {
      if (!this.ended) while (await this.d.next());
      return null;
    } catch (e) {
      return e as Error;
    } finally {
      this.ended = true;
    }
  }

  /** Stops the program if it still runs. */
  stop(): void {
    this.d.stop();
  }
}

/** Decompressed bytes kept behind the read position, so nearby reads need no new pass. */
const HISTORY = 8 << 20;
/** The end kept from the measuring pass (where the vmdesc is looked for first). */
const TAIL = 2 << 20;

/**
 * Positional reads over a compressed file: bytes [0, offset) are the file's own (the libvirt
 * header), then the decompressed payload. Reads go forward through one running decompressor; a
 * read behind the kept history starts a new pass. The first pass measures the size.
 */
class DecompressingReader implements Reader {
  private current: Decompressor | null = null;
  /** Decompressed offset (absolute, past `offset`) of the next byte the decompressor yields. */
  private position = 0;
  private history: { at: number; data: Buffer }[] = [];
  private historyBytes = 0;
  private tail: { at: number; data: Buffer } | null = null;
  size = 0;

  constructor(
    private readonly handle: fsp.FileHandle,
    private readonly cmd: string[],
    private readonly file: string,
    private readonly offset: number,
  ) {}

  /** The measuring pass: decompresses everything once, keeps the last TAIL bytes. */
  async measure(): Promise<void> {
    const d = new Decompressor(this.cmd, this.file, this.offset);
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let n = 0;
    try {
      for (let c = await d.next(); c; c = await d.next()) {
        n += c.length;
        kept.push(c);
        keptBytes += c.length;
        while (keptBytes - kept[0]!.length >= TAIL) keptBytes -= kept.shift()!.length;
      }
    } finally {
      d.stop();
    }
    this.size = this.offset + n;
    this.tail = { at: this.size - keptBytes, data: Buffer.concat(kept) };
  }

  async read(into: Uint8Array, off: number, length: number, position: number): Promise<number> {
    if (position < this.offset) {
      // The header area is the file's own bytes.
      const n = Math.min(length, this.offset - position);
      return (await this.handle.read(into, off, n, position)).bytesRead;
    }
    const end = Math.min(position + length, this.size);
    let done = 0;
    while (position + done < end) {
      const p = position + done;
      const hit = this.find(p);
      if (hit) {
        const n = Math.min(end - p, hit.at + hit.data.length - p);
        into.set(hit.data.subarray(p - hit.at, p - hit.at + n), off + done);
        done += n;
        continue;
      }
      if (p < this.position || !this.current) this.restart();
      const c = await this.current!.next();
      if (!c) {
        this.current = null;
        break;
      }
      this.history.push({ at: this.position, data: c });
      this.historyBytes += c.length;
      this.position += c.length;
      while (this.historyBytes - this.history[0]!.data.length >= HISTORY) this.historyBytes -= this.history.shift()!.data.length;
    }
    return done;
  }

  private find(p: number): { at: number; data: Buffer } | null {
    if (this.tail && p >= this.tail.at) return this.tail;
    for (let i = this.history.length - 1; i >= 0; i--) {
      const h = this.history[i]!;
      if (p >= h.at + h.data.length) return null;
      if (p >= h.at) return h;
    }
    return null;
  }

  private restart(): void {
    this.current?.stop();
    this.current = new Decompressor(this.cmd, this.file, this.offset);
    this.position = this.offset;
    this.history = [];
    this.historyBytes = 0;
  }

  async close(): Promise<void> {
    this.current?.stop();
    this.current = null;
    await this.handle.close();
  }
}

/**
 * A FileSource over a compressed file: [0, offset) as stored, then the payload decompressed by
 * `format`'s program. Opening decompresses once to learn the size (and fails on corrupt data).
 */
export async function openDecompressedSource(file: string, offset: number, format: string): Promise<FileSource> {
  const cmd = decompressCommand(format);
  const handle = await fsp.open(file, 'r');
  const reader = new DecompressingReader(handle, cmd, file, offset);
  try {
    const st = await handle.stat();
    await reader.measure();
    return FileSource.fromReader(reader, file, reader.size, st.blocks * 512);
  } catch (e) {
    await reader.close();
    throw e;
  }
}
