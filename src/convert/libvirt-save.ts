// A converted libvirt save stays a libvirt save: header, domain XML, cookie and was_running are
// kept, the format field says what the output holds, and the header is marked complete last.
import { encodeLibvirtHeader, libvirtMagic, type LibvirtHeader } from '../codec/libvirt.js';
import { LIBVIRT_FORMAT_RAW, LIBVIRT_FORMAT_SPARSE } from '../format/constants.js';
import { FormatError, UsageError } from '../format/errors.js';
import { readRecords } from '../codec/records.js';
import { StreamCursor } from '../io/cursor.js';
import type { DecompressedStream } from '../io/decompress.js';
import type { OutputPrefix } from '../writer/mapped-ram-writer.js';
import type { ByteSink } from './byte-sink.js';

/** What a conversion does with a libvirt save's header. */
export interface LibvirtSaveOptions {
  /** Write a bare QEMU file: the input's libvirt header is dropped (never without this option). */
  dropLibvirtHeader?: boolean;
  /** Convert a save libvirt never finished ("LibvirtQemudPart"); the output stays marked incomplete. */
  allowIncomplete?: boolean;
}

/**
 * The header a conversion of `input` starts with: the input's, with format 6 (sparse) for a
 * mapped-ram output or 0 (raw) for a stream, written as "LibvirtQemudPart" and sealed with the
 * input's own magic once the data is durable (libvirt's order). null: no header to write.
 */
export function libvirtOutputPrefix(input: LibvirtHeader | null, to: 'mapped-ram' | 'stream', opts: LibvirtSaveOptions): OutputPrefix | null {
  if (!input) return null;
  if (!input.complete && !opts.allowIncomplete) {
    throw new FormatError(0, 'a complete libvirt save ("LibvirtQemudSave")', '"LibvirtQemudPart": libvirt never finished this save (--allow-incomplete converts it anyway)');
  }
  if (opts.dropLibvirtHeader) return null;
  const format = to === 'mapped-ram' ? LIBVIRT_FORMAT_SPARSE : LIBVIRT_FORMAT_RAW;
  return { bytes: encodeLibvirtHeader({ ...input, complete: false, format }), seal: libvirtMagic(input.complete) };
}

/** The stream offset of a mapped-ram output: right after the header when one is kept. */
export function outputOffset(prefix: OutputPrefix | null, offset: number | undefined): number | undefined {
  if (!prefix) return offset;
  if (offset !== undefined && offset !== prefix.bytes.length) {
    throw new UsageError(`--offset: a libvirt save's QEMU data starts right after its header (at ${prefix.bytes.length}); add --drop-libvirt-header for a bare file at another offset`);
  }
  return prefix.bytes.length;
}

/**
 * A compressed save's stream copied to `sink` as it is decompressed (a raw save), walked record by
 * record on the way so that only a whole, well-formed stream is finished. Returns the bytes copied.
 */
export async function copyDecompressed(stream: DecompressedStream, offset: number, sink: ByteSink): Promise<number> {
  let copied = 0;
  async function* tee(): AsyncGenerator<Uint8Array, void, undefined> {
    for await (const chunk of stream) {
      await sink.write(chunk);
      copied += chunk.length;
      yield chunk;
    }
  }
  try {
    let eof = false;
    for await (const r of readRecords(new StreamCursor(tee(), offset), {})) {
      if (r.type === 'eof') eof = true;
      if (r.type === 'stop') throw new FormatError(r.offset, 'a record mram can read', r.reason);
    }
    if (!eof) throw new FormatError(offset + copied, 'the EOF record of the migration stream', 'end of data', 'no-eof');
    await sink.finish();
    return copied;
  } catch (e) {
    await sink.abort();
    throw e;
  }
}
