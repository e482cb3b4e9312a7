// One entry point for every direction: detects the input's format and picks the converter.
import type { Writable } from 'node:stream';
import { decodeLibvirtFixed, isLibvirtMagic } from '../codec/libvirt.js';
import { LIBVIRT_HEADER_SIZE } from '../format/constants.js';
import { UsageError } from '../format/errors.js';
import { StreamCursor } from '../io/cursor.js';
import type { DirectIoMode } from '../io/direct-writer.js';
import type { PositionalSource } from '../io/source.js';
import { PrefetchFileCursor } from '../io/prefetch-cursor.js';
import { detectFormat, type MigrationFormat } from '../reader/detect.js';
import { MigrationFile, openInput } from '../reader/migration-file.js';
import { ByteSink, FileSink, WritableSink } from './byte-sink.js';
import type { ProgressListener } from './progress.js';
import { mappedRamToMappedRam, streamToMappedRam } from './to-mapped-ram.js';
import { mappedRamToStream } from './to-stream.js';

export type { MigrationFormat };

export interface ConvertOptions {
  /** Output format; default: the other format of the input (a pipe input: mapped-ram). */
  to?: MigrationFormat;
  /** Offset of the QEMU stream in a mapped-ram output. */
  offset?: number;
  directIo?: DirectIoMode;
  force?: boolean;
  onWarning?: (message: string) => void;
  onProgress?: ProgressListener;
  /** IN is a qcow2 image: convert the VM state of this internal snapshot (name or id). */
  snapshot?: string;
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
  const { format, offset, size, source } = await detect(input, opts.snapshot);
  const to = opts.to ?? (format === 'stream' ? 'mapped-ram' : 'stream');
  if (format === 'stream') {
    try {
      if (to === 'stream') throw new UsageError(`${input} is already a plain stream`);
      if (typeof output !== 'string') throw new UsageError('mapped-ram output must be a file (it is written out of order)');
      const s = await streamToMappedRam(new PrefetchFileCursor(source, offset), output, { ...opts, inputSize: size });
      return { from: format, to, bytes: s.size, direct: s.direct };
    } finally {
      await source.close();
    }
  }
  await source.close();
  const file = await MigrationFile.open(input, { offset, snapshot: opts.snapshot });
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

/** Format of a migration file from its configuration record, past a libvirt header if any. */
async function detect(path: string, snapshot?: string): Promise<{ format: MigrationFormat; offset: number; size: number; source: PositionalSource }> {
  const source = await openInput(path, snapshot);
  try {
    const head = new Uint8Array(Math.min(LIBVIRT_HEADER_SIZE, source.size));
    await source.readInto(head, 0);
    const offset = head.length >= 16 && isLibvirtMagic(head) ? decodeLibvirtFixed(head, source.size).dataOffset : 0;
    return { format: await detectFormat(source, offset), offset, size: source.size, source };
  } catch (e) {
    await source.close();
    throw e;
  }
}
