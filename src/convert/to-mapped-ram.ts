// Plain stream or mapped-ram → mapped-ram: the main stream is copied record by record (RAM PART/END
// reduced to EOS), pages go to their slots in the page areas, zero pages become holes.
import { targetPageSize, type Configuration } from '../codec/configuration.js';
import { deviceVersionMismatch, readRecords, type MigrationRecord } from '../codec/records.js';
import type { SectionHeader } from '../codec/section.js';
import { isIgnoredEntry, type RamBlockEntry } from '../codec/ram.js';
import { CAPABILITY_MAPPED_RAM, CAPABILITY_X_IGNORE_SHARED, RAM_SECTION_IDSTR } from '../format/constants.js';
import { FormatError, UsageError } from '../format/errors.js';
import type { Cursor } from '../io/cursor.js';
import type { DirectIoMode } from '../io/direct-writer.js';
import type { MigrationFile } from '../reader/migration-file.js';
import { rewriteVmdescConfiguration, withCapability } from '../writer/configuration.js';
import type { RamBlockSpec } from '../writer/layout.js';
import { MappedRamWriter, stagePageRecords, type OutputPrefix, type WriteSummary } from '../writer/mapped-ram-writer.js';
import { PageStager, type StagerOptions } from '../writer/page-stager.js';
import { Arena } from '../kernel/arena.js';
import { PREFETCH_BUFFER } from '../io/prefetch-cursor.js';
import { throttle, type ProgressListener } from './progress.js';
import { trailingWarning } from './to-stream.js';

export interface ToMappedRamOptions {
  /** Offset of the QEMU stream in the output (`file:PATH,offset=N`). */
  offset?: number;
  /** A header before the stream (`offset` bytes long), sealed last (a kept libvirt header). */
  prefix?: OutputPrefix;
  directIo?: DirectIoMode;
  force?: boolean;
  onWarning?: (message: string) => void;
  onProgress?: ProgressListener;
  stager?: StagerOptions;
  /**
   * Stage plain-stream page records in place with the wasm kernel (default). false: every record
   * takes the TypeScript walker's per-record path (the reference the fast path is tested against).
   */
  inPlace?: boolean;
  /**
   * Plain-stream input under x-ignore-shared: the blocks it leaves out (no page record), which get
   * QEMU 11's 0/0 header. Only a file can say so before its end: a pipe input with x-ignore-shared
   * is refused without this set.
   */
  ignoredBlocks?: ReadonlySet<string>;
}

/** Bytes read per chunk when copying a mapped-ram page area (a multiple of any page size). */
const COPY_CHUNK = 8 << 20;
/** The converter's input buffer, in the arena. */
const INPUT_BUFFER = PREFETCH_BUFFER;

/**
 * Reads a plain QEMU stream (file cursor or pipe) and writes a mapped-ram file at `outPath`.
 * Pages re-sent by live iterations overwrite their slot; a later ZERO record clears the bit.
 */
export async function streamToMappedRam(input: Cursor, outPath: string, opts: ToMappedRamOptions & { inputSize?: number } = {}): Promise<WriteSummary> {
  // One wasm memory holds the input buffer and the page extents: page records are copied from
  // where the read put them to their slot by the kernel, scanned on the way (no JS per page).
  const inPlace = opts.inPlace ?? true;
  const arena = new Arena({ bytes: PageStager.arenaBytes(opts.stager) + INPUT_BUFFER });
  if (inPlace) await input.useBuffer(arena.alloc(INPUT_BUFFER).view);
  const sink: { writer: MappedRamWriter | null } = { writer: null };
  const onPage = (block: RamBlockEntry, page: number, data: Uint8Array | null) => {
    const w = sink.writer!;
    return data ? w.writePage(block.idstr, page, data) : w.zeroPage(block.idstr, page);
  };
  const onPageRecords = (block: RamBlockEntry, buffered: Uint8Array) => (sink.writer ? stagePageRecords(sink.writer, block.idstr, buffered) : 0);
  const records = readRecords(input, { pageData: true, deviceData: true, inputSize: opts.inputSize, onPage, onPageRecords: inPlace ? onPageRecords : undefined });
  return translate(records, outPath, { ...opts, stager: { ...opts.stager, arena } }, () => input.offset, opts.inputSize ?? null, null, sink);
}

/** Re-lays out a mapped-ram file: new offset, zero pages rescanned, stale data dropped. */
export async function mappedRamToMappedRam(file: MigrationFile, outPath: string, opts: ToMappedRamOptions = {}): Promise<WriteSummary> {
  let copied = 0;
  const copyPages = async (w: MappedRamWriter) => {
    const buf = new Uint8Array(COPY_CHUNK);
    for (const b of file.blocks) {
      const perChunk = COPY_CHUNK / b.pageSize;
      for (const run of b.presentRuns()) {
        for (let p = run.start; p < run.start + run.count; p += perChunk) {
          const n = Math.min(perChunk, run.start + run.count - p);
          const data = buf.subarray(0, n * b.pageSize);
          await b.readPages(data, p, n);
          await w.writePages(b.id, p, data);
          copied += data.length;
        }
      }
    }
  };
  return translate(file.records({ deviceData: true }), outPath, opts, () => file.streamOffset + copied, file.size, copyPages);
}

/** Page bitmaps the output may need for an input of unknown or small size (2 TiB of 4 KiB pages). */
const MIN_BITMAP_BUDGET = 64 << 20;

/**
 * The output's bitmaps (one bit a page, in memory) are sized by the declared RAM: bounded by the
 * input (a stream sends every page at least once, 9 bytes or more each, so a real input is larger
 * than its bitmaps), so a few hostile bytes cannot declare a petabyte.
 */
function checkRamSize(total: number, at: number, pageSize: number, inputSize: number | null): void {
  const budget = Math.max(inputSize ?? 0, MIN_BITMAP_BUDGET);
  if (total / pageSize / 8 > budget) {
    throw new FormatError(at, `a RAM size whose page bitmaps (1 bit a page) fit in ${budget} bytes, bounded by the input`, `${total} bytes`);
  }
}

async function translate(
  records: AsyncIterable<MigrationRecord>,
  outPath: string,
  opts: ToMappedRamOptions,
  bytesIn: () => number,
  totalIn: number | null,
  copyPages: ((w: MappedRamWriter) => Promise<void>) | null,
  sink: { writer: MappedRamWriter | null } = { writer: null },
): Promise<WriteSummary> {
  let writer: MappedRamWriter | null = null;
  let config: Configuration | null = null;
  let ramStart: SectionHeader | null = null;
  let ramStarted = false;
  let memTotal = 0;
  let pending: RamBlockSpec[] = [];
  let pendingBytes = 0;
  const progress = throttle(opts.onProgress);
  const open = async (pageSize: number) => {
    writer ??= await MappedRamWriter.create(outPath, { offset: opts.offset, prefix: opts.prefix, directIo: opts.directIo, force: opts.force, pageSize, onWarning: opts.onWarning, stager: opts.stager });
    sink.writer = writer;
    return writer;
  };
  const startRam = async (w: MappedRamWriter) => {
    await w.writeRamStart(ramStart!, pending);
    ramStarted = true;
    if (copyPages) await copyPages(w);
  };
  try {
    for await (const r of records) {
      const w: MappedRamWriter = writer ?? (r.type === 'header' ? (null as unknown as MappedRamWriter) : await open(targetPageSize(config)));
      switch (r.type) {
        case 'header':
          break;
        case 'configuration':
          config = r.config;
          // A mapped-ram stream read sequentially would skip its page areas: only files carry them.
          if (!copyPages && config.capabilities?.includes(CAPABILITY_MAPPED_RAM)) throw new UsageError('mapped-ram input must be a file, not a pipe');
          // Which blocks x-ignore-shared left out shows only at the stream's end, after their headers.
          if (!copyPages && !opts.ignoredBlocks && config.capabilities?.includes(CAPABILITY_X_IGNORE_SHARED)) {
            throw new UsageError('an x-ignore-shared stream cannot be converted from a pipe (the blocks it leaves out are known only at its end): save it to a file first');
          }
          await (await open(targetPageSize(config))).writeConfiguration(config);
          break;
        case 'command':
          // QEMU refuses postcopy-ram with mapped-ram, and a 16-byte advise without it.
          if (r.command.name === 'POSTCOPY_ADVISE' && r.command.data.length > 0) throw new UsageError('a stream saved with postcopy-ram cannot become mapped-ram (QEMU loads mapped-ram only with postcopy-ram off)');
          await w.writeCommand(r.command);
          break;
        case 'section':
          if (r.header.idstr !== RAM_SECTION_IDSTR || r.header.instanceId !== 0) break;
          if (r.header.kind === 'start') {
            if (ramStart) throw new FormatError(r.offset, 'a single RAM START section');
            ramStart = r.header;
          } else if (r.header.kind === 'part' || r.header.kind === 'end') {
            if (!ramStarted) throw new FormatError(r.offset, 'the RAM block list before RAM PART/END sections');
            await w.writeRamEos(r.header.kind);
          }
          break;
        case 'ram-mem-size':
          checkRamSize(r.total, r.offset, w.pageSize, totalIn);
          memTotal = r.total;
          pending = [];
          pendingBytes = 0;
          if (memTotal === 0) await startRam(w);
          break;
        case 'ram-block':
          pending.push({ id: r.entry.idstr, usedLength: r.entry.usedLength, mrAddr: r.entry.mrAddr, pageSize: w.pageSize, ignored: isIgnoredEntry(r.entry) || (opts.ignoredBlocks?.has(r.entry.idstr) ?? false) });
          pendingBytes += r.entry.usedLength;
          if (pendingBytes === memTotal) await startRam(w);
          break;
        case 'ram-page':
          await w.writePage(r.block.idstr, r.pageIndex, r.data!);
          break;
        case 'ram-zero':
          // QEMU's loader refuses any other fill byte ("Found a zero page with value N"), and so do we.
          if (r.fill !== 0) throw new FormatError(r.offset, 'a zero page record with fill byte 0 (QEMU refuses others)', String(r.fill));
          await w.zeroPage(r.block.idstr, r.pageIndex);
          break;
        case 'ram-flush':
          // MULTIFD_FLUSH has no place in a mapped-ram file (QEMU's loader rejects it).
          break;
        case 'ram-eos':
          if (ramStart && !ramStarted) throw new FormatError(r.offset, 'a RAM START section listing its blocks');
          break;
        case 'device-state': {
          const refused = deviceVersionMismatch(r);
          if (refused) throw refused;
          await w.writeDevice({ idstr: r.header.idstr, instanceId: r.header.instanceId, version: r.header.version, sectionId: r.header.sectionId }, r.data!);
          break;
        }
        case 'section-footer':
          break;
        case 'eof':
          // QEMU would "load" it, but a migration without RAM restores nothing: not a conversion.
          if (!ramStarted) throw new FormatError(r.offset, 'a RAM section before the EOF record (a migration without RAM restores nothing)', 'EOF');
          await w.writeEof();
          break;
        case 'vmdesc':
          await w.writeVmdesc(config ? rewriteVmdescConfiguration(r.vmdesc.json, withCapability(config, CAPABILITY_MAPPED_RAM, true)) : r.vmdesc.json);
          break;
        case 'trailing':
          opts.onWarning?.(trailingWarning(r));
          break;
        case 'stop':
          throw new FormatError(r.offset, 'a record mram can convert', r.reason);
      }
      progress.tick(() => ({ bytesIn: bytesIn(), totalIn, bytesOut: writer?.bytesWritten ?? 0 }));
    }
    const done = writer as MappedRamWriter | null;
    if (!done) throw new FormatError(0, 'a migration stream', 'no records');
    const summary = await done.finish();
    progress.final({ bytesIn: bytesIn(), totalIn, bytesOut: done.bytesWritten });
    return summary;
  } catch (e) {
    await (writer as MappedRamWriter | null)?.abort();
    throw e;
  }
}
