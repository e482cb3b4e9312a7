// One entry point for every direction: detects the input's format and picks the converter.
import type { Writable } from 'node:stream';
import type { LibvirtHeader } from '../codec/libvirt.js';
import { UsageError } from '../format/errors.js';
import { StreamCursor } from '../io/cursor.js';
import type { DirectIoMode } from '../io/direct-writer.js';
import { DecompressedStream, isCompressedFormat } from '../io/decompress.js';
import { FileSource } from '../io/file-source.js';
import { readLibvirtHeader } from '../reader/input.js';
import { PrefetchFileCursor } from '../io/prefetch-cursor.js';
import { explainMissingMagic } from '../reader/find-stream.js';
import { MigrationFile } from '../reader/migration-file.js';
import { readStreamStart, type MigrationFormat } from '../reader/detect.js';
import { isQcow2File, openSnapshotSource, snapshotNeeded } from '../reader/snapshot.js';
import type { PositionalSource } from '../io/source.js';
import { refuseSameFile } from '../writer/output-file.js';
import { ByteSink, FileSink, WritableSink } from './byte-sink.js';
import { copyDecompressed, libvirtOutputPrefix, outputOffset, type LibvirtSaveOptions } from './libvirt-save.js';
import type { OutputPrefix } from '../writer/mapped-ram-writer.js';
import type { ProgressListener } from './progress.js';
import { mappedRamToMappedRam, streamToMappedRam } from './to-mapped-ram.js';
import { mappedRamToStream } from './to-stream.js';

/** The two RAM encodings (re-exported for convert's callers). */
export type { MigrationFormat };

/** Options of `convertMigration`. */
export interface ConvertOptions extends LibvirtSaveOptions {
  /** Output format; default: the other format of the input (a pipe input: mapped-ram). */
  to?: MigrationFormat;
  /** Offset of the QEMU stream in a mapped-ram output (`file:OUT,offset=N`). */
  offset?: number;
  /**
   * Where the QEMU stream starts in the input file (a save made with `file:IN,offset=N`);
   * default: after a libvirt header if any, else 0.
   */
  inputOffset?: number;
  directIo?: DirectIoMode;
  force?: boolean;
  /** Called with a one-line warning (e.g. O_DIRECT refused, falling back to buffered writes). */
  onWarning?: (message: string) => void;
  onProgress?: ProgressListener;
  /** IN is a qcow2 image: convert the VM state of this internal snapshot (name or id). */
  snapshot?: string;
}

/** What `convertMigration` did. */
export interface ConvertResult {
  from: MigrationFormat;
  to: MigrationFormat;
  /** Bytes of the output (apparent size for mapped-ram). */
  bytes: number;
  /** mapped-ram output: whether pages bypassed the page cache. */
  direct: boolean | null;
}

/**
 * Converts `input` (a path, or a byte stream such as process.stdin carrying a plain stream) to
 * `output` (a path, or a Writable such as process.stdout for plain-stream output).
 */
export async function convertMigration(
  input: string | AsyncIterable<Uint8Array>,
  output: string | Writable | NodeJS.WritableStream,
  opts: ConvertOptions = {},
): Promise<ConvertResult> {
  if (typeof input !== 'string') {
    const to = opts.to ?? 'mapped-ram';
    if (to !== 'mapped-ram') throw new UsageError('a pipe input is converted to mapped-ram only (a plain stream is already one)');
    if (typeof output !== 'string') throw new UsageError('mapped-ram output must be a file (it is written out of order)');
    const s = await streamToMappedRam(new StreamCursor(input), output, opts);
    return { from: 'stream', to, bytes: s.size, direct: s.direct };
  }
  if (typeof output === 'string') refuseSameFile(input, output);
  if (opts.snapshot === undefined && (await isQcow2File(input))) throw await snapshotNeeded(input);
  const { format, offset, size, source, ignoreShared, libvirt } = await detect(input, opts.inputOffset, opts.snapshot);
  const to = opts.to ?? (format === 'stream' ? 'mapped-ram' : 'stream');
  if (format === 'stream') {
    try {
      const compressed = libvirt && isCompressedFormat(libvirt.formatName) ? libvirt.formatName : null;
      if (to === 'stream' && compressed) return { from: format, to, bytes: await toRawSave(input, offset, compressed, output, libvirtOutputPrefix(libvirt, to, opts), opts), direct: null };
      if (to === 'stream') throw new UsageError(`${input} is already a plain stream`);
      if (typeof output !== 'string') throw new UsageError('mapped-ram output must be a file (it is written out of order)');
      const ignoredBlocks = ignoreShared ? await blocksLeftOut(input, offset, opts.snapshot) : undefined;
      const prefix = libvirtOutputPrefix(libvirt, to, opts);
      const mr = { ...opts, prefix: prefix ?? undefined, offset: outputOffset(prefix, opts.offset), ignoredBlocks };
      if (compressed) {
        const s = await fromCompressed(input, offset, compressed, output, mr);
        return { from: format, to, bytes: s.size, direct: s.direct };
      }
      const s = await streamToMappedRam(new PrefetchFileCursor(source, offset), output, { ...mr, inputSize: size });
      return { from: format, to, bytes: s.size, direct: s.direct };
    } finally {
      await source.close();
    }
  }
  await source.close();
  const file = await MigrationFile.open(input, { offset, snapshot: opts.snapshot });
  try {
    if (!file.complete) throw new UsageError(`${input} is incomplete (${file.notes.join('; ') || 'no EOF record'})`);
    file.requireLoadable();
    const prefix = libvirtOutputPrefix(file.libvirt, to, opts);
    if (to === 'mapped-ram') {
      if (typeof output !== 'string') throw new UsageError('mapped-ram output must be a file (it is written out of order)');
      const s = await mappedRamToMappedRam(file, output, { ...opts, prefix: prefix ?? undefined, offset: outputOffset(prefix, opts.offset) });
      return { from: format, to, bytes: s.size, direct: s.direct };
    }
    const s = await mappedRamToStream(file, await streamSink(output, prefix, opts.force), opts);
    return { from: format, to, bytes: s.bytes, direct: null };
  } finally {
    await file.close();
  }
}

/** The output of a plain stream, starting with the libvirt header if one is kept (files only: it is sealed last). */
async function streamSink(output: string | Writable | NodeJS.WritableStream, prefix: OutputPrefix | null, force?: boolean): Promise<ByteSink> {
  if (typeof output !== 'string') {
    if (prefix) throw new UsageError('a libvirt save is written to a file (its header is marked complete last); add --drop-libvirt-header for a bare stream on stdout');
    return new WritableSink(output);
  }
  const sink = await FileSink.create(output, force, prefix?.seal);
  if (prefix) await sink.write(prefix.bytes).catch(async (e) => {
    await sink.abort();
    throw e;
  });
  return sink;
}

/** A compressed save, read in one pass from its decompressor; its error wins over what the garbage it produced looked like. */
async function fromCompressed(input: string, offset: number, format: string, output: string, opts: Parameters<typeof streamToMappedRam>[2]) {
  const stream = new DecompressedStream(input, offset, format);
  try {
    return await streamToMappedRam(new StreamCursor(stream, offset), output, opts);
  } catch (e) {
    throw (await stream.failure()) ?? e;
  } finally {
    stream.stop();
  }
}

/** A compressed save → the same save decompressed (raw, or bare with --drop-libvirt-header). */
async function toRawSave(input: string, offset: number, format: string, output: string | Writable | NodeJS.WritableStream, prefix: OutputPrefix | null, opts: ConvertOptions): Promise<number> {
  const stream = new DecompressedStream(input, offset, format);
  try {
    const sink = await streamSink(output, prefix, opts.force);
    return (await copyDecompressed(stream, offset, sink)) + (prefix?.bytes.length ?? 0);
  } catch (e) {
    throw (await stream.failure()) ?? e;
  } finally {
    stream.stop();
  }
}

/**
 * Format of a migration file from its configuration record, at `inputOffset` or past a libvirt
 * header if any (a compressed save holds a stream); with neither, a stream found further on is
 * named in the error.
 */
async function detect(
  path: string,
  inputOffset?: number,
  snapshot?: string,
): Promise<{ format: MigrationFormat; offset: number; size: number; source: PositionalSource; ignoreShared: boolean; libvirt: LibvirtHeader | null }> {
  const source = snapshot === undefined ? await FileSource.open(path) : await openSnapshotSource(path, snapshot);
  let isLibvirt = false;
  try {
    const libvirt = await readLibvirtHeader(source);
    isLibvirt = libvirt !== null;
    const offset = inputOffset ?? libvirt?.dataOffset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > source.size) throw new UsageError(`--input-offset ${offset} is outside ${path} (${source.size} bytes)`);
    if (libvirt && isCompressedFormat(libvirt.formatName)) return { format: 'stream', offset, size: source.size, source, ignoreShared: false, libvirt };
    const start = await readStreamStart(source, offset);
    const format: MigrationFormat = start.mappedRam ? 'mapped-ram' : 'stream';
    const ignoreShared = start.ignoreShared;
    return { format, offset, size: source.size, source, ignoreShared, libvirt };
  } catch (e) {
    const err = inputOffset === undefined && !isLibvirt ? await explainMissingMagic(e, source, '--input-offset') : e;
    await source.close();
    throw err;
  }
}

/** Blocks of an x-ignore-shared plain stream that no page record fills: QEMU left them out. */
async function blocksLeftOut(path: string, offset: number, snapshot?: string): Promise<Set<string>> {
  const file = await MigrationFile.open(path, { offset, snapshot });
  try {
    return new Set(file.blocks.filter((b) => b.ignored).map((b) => b.id));
  } finally {
    await file.close();
  }
}
