// One entry point for every direction: detects the input's format and picks the converter.
import type { Writable } from 'node:stream';
import { readRecords } from '../codec/records.js';
import { decodeLibvirtFixed, isLibvirtMagic } from '../codec/libvirt.js';
import { CAPABILITY_MAPPED_RAM, CAPABILITY_X_IGNORE_SHARED, LIBVIRT_HEADER_SIZE } from '../format/constants.js';
import { UsageError } from '../format/errors.js';
import { FileCursor, StreamCursor } from '../io/cursor.js';
import type { DirectIoMode } from '../io/direct-writer.js';
import { FileSource } from '../io/file-source.js';
import { PrefetchFileCursor } from '../io/prefetch-cursor.js';
import { explainMissingMagic } from '../reader/find-stream.js';
import { MigrationFile } from '../reader/migration-file.js';
import { ByteSink, FileSink, WritableSink } from './byte-sink.js';
import type { ProgressListener } from './progress.js';
import { mappedRamToMappedRam, streamToMappedRam } from './to-mapped-ram.js';
import { mappedRamToStream } from './to-stream.js';

export type MigrationFormat = 'mapped-ram' | 'stream';

export interface ConvertOptions {
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
  onWarning?: (message: string) => void;
  onProgress?: ProgressListener;
}

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
  const { format, offset, size, source, ignoreShared } = await detect(input, opts.inputOffset);
  const to = opts.to ?? (format === 'stream' ? 'mapped-ram' : 'stream');
  if (format === 'stream') {
    try {
      if (to === 'stream') throw new UsageError(`${input} is already a plain stream`);
      if (typeof output !== 'string') throw new UsageError('mapped-ram output must be a file (it is written out of order)');
      const ignoredBlocks = ignoreShared ? await blocksLeftOut(input, offset) : undefined;
      const s = await streamToMappedRam(new PrefetchFileCursor(source, offset), output, { ...opts, inputSize: size, ignoredBlocks });
      return { from: format, to, bytes: s.size, direct: s.direct };
    } finally {
      await source.close();
    }
  }
  await source.close();
  const file = await MigrationFile.open(input, { offset });
  try {
    if (!file.complete) throw new UsageError(`${input} is incomplete (${file.notes.join('; ') || 'no EOF record'})`);
    if (to === 'mapped-ram') {
      if (typeof output !== 'string') throw new UsageError('mapped-ram output must be a file (it is written out of order)');
      const s = await mappedRamToMappedRam(file, output, opts);
      return { from: format, to, bytes: s.size, direct: s.direct };
    }
    const sink: ByteSink = typeof output === 'string' ? await FileSink.create(output, opts.force) : new WritableSink(output);
    const s = await mappedRamToStream(file, sink, opts);
    return { from: format, to, bytes: s.bytes, direct: null };
  } finally {
    await file.close();
  }
}

/**
 * Format of a migration file from its configuration record, at `inputOffset` or past a libvirt
 * header if any; with neither, a stream found further on is named in the error.
 */
async function detect(path: string, inputOffset?: number): Promise<{ format: MigrationFormat; offset: number; size: number; source: FileSource; ignoreShared: boolean }> {
  const source = await FileSource.open(path);
  let libvirt = false;
  try {
    const head = new Uint8Array(Math.min(LIBVIRT_HEADER_SIZE, source.size));
    await source.readInto(head, 0);
    libvirt = head.length >= 16 && isLibvirtMagic(head);
    const offset = inputOffset ?? (libvirt ? decodeLibvirtFixed(head, source.size).dataOffset : 0);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > source.size) throw new UsageError(`--input-offset ${offset} is outside ${path} (${source.size} bytes)`);
    let format: MigrationFormat = 'stream';
    let ignoreShared = false;
    for await (const r of readRecords(new FileCursor(source, offset), { vmdesc: null })) {
      if (r.type === 'configuration') {
        format = r.config.capabilities?.includes(CAPABILITY_MAPPED_RAM) ? 'mapped-ram' : 'stream';
        ignoreShared = r.config.capabilities?.includes(CAPABILITY_X_IGNORE_SHARED) ?? false;
      }
      if (r.type !== 'header') break;
    }
    return { format, offset, size: source.size, source, ignoreShared };
  } catch (e) {
    const err = inputOffset === undefined && !libvirt ? await explainMissingMagic(e, source, '--input-offset') : e;
    await source.close();
    throw err;
  }
}

/** Blocks of an x-ignore-shared plain stream that no page record fills: QEMU left them out. */
async function blocksLeftOut(path: string, offset: number): Promise<Set<string>> {
  const file = await MigrationFile.open(path, { offset });
  try {
    return new Set(file.blocks.filter((b) => b.ignored).map((b) => b.id));
  } finally {
    await file.close();
  }
}
