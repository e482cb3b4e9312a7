// Raw RAM images of RAM blocks: sparse files (only non-zero pages written) or a dense byte stream.
import { promises as fsp } from 'node:fs';
import { FormatError, IgnoredBlockError, UsageError } from '../format/errors.js';
import { runsIn } from '../kernel/bit-runs.js';
import type { Arena } from '../kernel/index.js';
import type { MigrationFile } from '../reader/migration-file.js';
import type { RamBlock } from '../reader/ram-block.js';
import { withReaderArena, type PageReaderOptions } from '../reader/page-reader.js';
import { PageAreaFile } from '../io/direct-writer.js';
import { writeFailure } from '../io/file-io.js';
import { OutputFile, refuseSameFile } from '../writer/output-file.js';
import { blockPath } from './names.js';

/** Options of extractBlock and extractAll. */
export interface ExtractOptions extends ExtractProgress {
  /** Replace an existing output file. */
  force?: boolean;
}

/** How pages are read, and progress reports. */
export interface ExtractProgress extends PageReaderOptions {
  /** Called after each chunk: bytes of guest RAM done so far of `total` (all blocks for extractAll). */
  progress?: (done: number, total: number) => void;
}

/** One block's image: where it went and how much was written. */
export interface ExtractResult {
  block: string;
  path: string;
  /** Apparent size: the block's used length. */
  length: number;
  /** Bytes actually written (non-zero pages). */
  written: number;
}

/**
 * Writes the block as a sparse raw image: a temporary file in the same directory, renamed at the
 * end. Pages go out with O_DIRECT from the reader's arena where the filesystem allows it, so a
 * multi-GiB image does not push other processes' data out of the page cache.
 */
export async function extractBlock(file: MigrationFile, block: RamBlock, out: string, opts: ExtractOptions = {}, arena?: Arena): Promise<ExtractResult> {
  // Refused before OUT is created: the block's memory is not in the file, or QEMU would not load it.
  if (block.ignored) throw new IgnoredBlockError(block.id);
  file.requireLoadable();
  if (!arena) return withReaderArena((a) => extractBlock(file, block, out, opts, a), opts);
  refuseSameFile(file.path, out);
  const output = await OutputFile.create(out, opts.force);
  let written = 0;
  try {
    // Sized first: absent and zero pages stay holes, and no page write extends the file (on ext4
    // an extending O_DIRECT write journals a size update each time).
    await fsp.truncate(output.tempPath, block.usedLength).catch((e) => {
      throw writeFailure(e, out);
    });
    // A filesystem that refuses O_DIRECT gets buffered writes: the image is the same.
    const pages = await PageAreaFile.open(output.tempPath, block.pageSize % 4096 === 0 ? 'auto' : 'off', () => undefined, out);
    try {
      // Never-sent pages of a stream stay holes: only chunks with data are read.
      for await (const c of block.chunks(arena, { ...opts, presentOnly: true })) {
        // Chunks sit at 4096-aligned arena offsets; with pages of 4096 multiples, runs are aligned.
        const runs = [...runsIn(c.present, 0, c.pages)].map((r) => [r.start * block.pageSize, (r.start + r.count) * block.pageSize] as const);
        // The chunk stays as it is until the next is asked for: its runs are written by then.
        await pages.writeRuns(c.data, runs, c.firstPage * block.pageSize);
        for (const [start, end] of runs) written += end - start;
        opts.progress?.(Math.min(block.usedLength, (c.firstPage + c.pages) * block.pageSize), block.usedLength);
      }
      // Durable before the rename, so a crash never leaves a plausible-looking image.
      await pages.sync();
    } finally {
      await pages.close().catch(() => undefined);
    }
    await output.commit();
  } catch (e) {
    await output.discard();
    throw e;
  }
  return { block: block.id, path: out, length: block.usedLength, written };
}

/**
 * Every block into `dir` (created if missing), file names from `blockFileName`; blocks that
 * x-ignore-shared left out have no image (their memory is not in the file) and are skipped.
 */
export async function extractAll(file: MigrationFile, dir: string, opts: ExtractOptions = {}): Promise<ExtractResult[]> {
  if (file.blocks.length === 0) throw new FormatError(file.streamOffset, 'a RAM section (the migration holds no RAM)', 'none');
  file.requireLoadable();
  await fsp.mkdir(dir, { recursive: true });
  const targets = file.blocks.filter((b) => !b.ignored).map((b) => ({ b, out: blockPath(dir, b.id) }));
  if (!opts.force) for (const t of targets) if (await exists(t.out)) throw new UsageError(`${t.out} exists (use --force to overwrite it)`);
  return withReaderArena(async (arena) => {
    const results: ExtractResult[] = [];
    const total = targets.reduce((n, t) => n + t.b.usedLength, 0);
    let before = 0;
    for (const t of targets) {
      const progress = opts.progress && ((done: number) => opts.progress!(before + done, total));
      results.push(await extractBlock(file, t.b, t.out, { ...opts, progress }, arena));
      before += t.b.usedLength;
    }
    return results;
  }, opts);
}

/** Dense raw image on a stream (e.g. stdout): zeros included. */
export async function extractToStream(file: MigrationFile, block: RamBlock, out: NodeJS.WritableStream, opts: ExtractProgress = {}): Promise<number> {
  if (block.ignored) throw new IgnoredBlockError(block.id);
  file.requireLoadable();
  return withReaderArena(async (arena) => {
    let n = 0;
    for await (const c of block.chunks(arena, opts)) {
      // The chunk's memory is reused for the next read: hand the stream a copy.
      const copy = Buffer.from(c.data);
      await new Promise<void>((resolve, reject) => out.write(copy, (err) => (err ? reject(writeFailure(err, 'standard output')) : resolve())));
      n += copy.length;
      opts.progress?.(Math.min(block.usedLength, n), block.usedLength);
    }
    return n;
  }, opts);
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}
