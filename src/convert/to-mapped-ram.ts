// Plain stream or mapped-ram → mapped-ram: the main stream is mapped record by record (RAM PART/END
// reduced to EOS), pages go to their slots in the page areas, zero pages become holes.
import { isIgnoredEntry } from '../codec/ram.js';
import { deviceVersionMismatch, nextRecord, type MigrationRecord } from '../codec/records.js';
import type { SectionHeader } from '../codec/section.js';
import { StreamState } from '../codec/state.js';
import { CAPABILITY_MAPPED_RAM, RAM_SECTION_IDSTR } from '../format/constants.js';
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

/** Options of the conversions to mapped-ram. */
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
  const state = new StreamState({ offset: input.offset });
  const data = { pageData: true, deviceData: true, inputSize: opts.inputSize };
  const conversion = new MappedRamConversion(outPath, { ...opts, stager: { ...opts.stager, arena } }, state, { bytesIn: () => input.offset, totalIn: opts.inputSize ?? null, copyPages: null });
  return conversion.run(() => {
    if (inPlace) stageBuffered(input, state, conversion.output);
    return nextRecord(input, state, data);
  });
}

/**
 * The converter's pre-pass, before decode sees the bytes: the CONTINUE page records of the current
 * block buffered at the cursor are staged in place by the wasm kernel (no record objects, no JS per
 * page). What it declines (another block, an extent not open yet, a record cut by the buffer's end)
 * is left to decode.
 */
function stageBuffered(c: Cursor, state: StreamState, writer: MappedRamWriter | null): void {
  const block = state.current;
  if (!writer || !block || state.mappedRam || !state.inRamPages) return;
  for (let used = 1; used > 0 && c.buffered >= 9; ) {
    used = stagePageRecords(writer, block.idstr, c.peek(c.buffered));
    c.bytes(used);
  }
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
  const state = new StreamState({ offset: file.streamOffset });
  const records = file.records({ deviceData: true, state });
  const conversion = new MappedRamConversion(outPath, opts, state, { bytesIn: () => file.streamOffset + copied, totalIn: file.size, copyPages });
  return conversion.run(async () => (await records.next()).value ?? null);
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

/** Where a conversion's records come from. */
interface ConversionInput {
  /** Bytes of input consumed so far (progress). */
  bytesIn(): number;
  totalIn: number | null;
  /** A mapped-ram input: copies its page areas once the output's block list is written; null for a stream. */
  copyPages: ((w: MappedRamWriter) => Promise<void>) | null;
}

/** One conversion to mapped-ram: each input record mapped to what the output gets. */
class MappedRamConversion {
  private writer: MappedRamWriter | null = null;
  private ramStart: SectionHeader | null = null;
  private ramStarted = false;
  private memTotal = 0;
  private pending: RamBlockSpec[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly outPath: string,
    private readonly opts: ToMappedRamOptions,
    private readonly state: StreamState,
    private readonly input: ConversionInput,
  ) {}

  /** The output, once the first record past the file header opened it. */
  get output(): MappedRamWriter | null {
    return this.writer;
  }

  /** Maps every record `next` hands out, then finishes the output (or removes it on failure). */
  async run(next: () => Promise<MigrationRecord | null>): Promise<WriteSummary> {
    const progress = throttle(this.opts.onProgress);
    const { bytesIn, totalIn } = this.input;
    try {
      for (let r = await next(); r !== null; r = await next()) {
        await this.apply(r);
        progress.tick(() => ({ bytesIn: bytesIn(), totalIn, bytesOut: this.writer?.bytesWritten ?? 0 }));
      }
      const done = this.writer;
      if (!done) throw new FormatError(0, 'a migration stream', 'no records');
      const summary = await done.finish();
      progress.final({ bytesIn: bytesIn(), totalIn, bytesOut: done.bytesWritten });
      return summary;
    } catch (e) {
      await this.writer?.abort();
      throw e;
    }
  }

  private async open(): Promise<MappedRamWriter> {
    const o = this.opts;
    this.writer ??= await MappedRamWriter.create(this.outPath, { offset: o.offset, prefix: o.prefix, directIo: o.directIo, force: o.force, pageSize: this.state.pageSize, onWarning: o.onWarning, stager: o.stager });
    return this.writer;
  }

  private async apply(r: MigrationRecord): Promise<void> {
    if (r.type === 'header') return;
    const w = await this.open();
    switch (r.type) {
      case 'configuration':
        this.checkConfiguration();
        await w.writeConfiguration(r.config);
        break;
      case 'command':
        // QEMU refuses postcopy-ram with mapped-ram, and a 16-byte advise without it.
        if (r.command.name === 'POSTCOPY_ADVISE' && r.command.data.length > 0) throw new UsageError('a stream saved with postcopy-ram cannot become mapped-ram (QEMU loads mapped-ram only with postcopy-ram off)');
        await w.writeCommand(r.command);
        break;
      case 'section':
        await this.section(w, r);
        break;
      case 'device-state': {
        const refused = deviceVersionMismatch(r);
        if (refused) throw refused;
        await w.writeDevice({ idstr: r.header.idstr, instanceId: r.header.instanceId, version: r.header.version, sectionId: r.header.sectionId }, r.data!);
        break;
      }
      case 'eof':
        // QEMU would "load" it, but a migration without RAM restores nothing: not a conversion.
        if (!this.ramStarted) throw new FormatError(r.offset, 'a RAM section before the EOF record (a migration without RAM restores nothing)', 'EOF');
        await w.writeEof();
        break;
      case 'vmdesc': {
        const config = this.state.config;
        await w.writeVmdesc(config ? rewriteVmdescConfiguration(r.vmdesc.json, withCapability(config, CAPABILITY_MAPPED_RAM, true)) : r.vmdesc.json);
        break;
      }
      case 'trailing':
        this.opts.onWarning?.(trailingWarning(r));
        break;
      case 'stop':
        throw new FormatError(r.offset, 'a record mram can convert', r.reason);
      default:
        await this.ram(w, r);
    }
  }

  /** What only a file can carry: its page areas (mapped-ram), or which blocks x-ignore-shared left out. */
  private checkConfiguration(): void {
    if (this.input.copyPages) return;
    // A mapped-ram stream read sequentially would skip its page areas: only files carry them.
    if (this.state.mappedRam) throw new UsageError('mapped-ram input must be a file, not a pipe');
    // Which blocks x-ignore-shared left out shows only at the stream's end, after their headers.
    if (!this.opts.ignoredBlocks && this.state.ignoreShared) {
      throw new UsageError('an x-ignore-shared stream cannot be converted from a pipe (the blocks it leaves out are known only at its end): save it to a file first');
    }
  }

  /** RAM START is held until its block list is complete; PART and END become bare EOS sections. */
  private async section(w: MappedRamWriter, r: Extract<MigrationRecord, { type: 'section' }>): Promise<void> {
    if (r.header.idstr !== RAM_SECTION_IDSTR || r.header.instanceId !== 0) return;
    if (r.header.kind === 'start') {
      if (this.ramStart) throw new FormatError(r.offset, 'a single RAM START section');
      this.ramStart = r.header;
    } else if (r.header.kind === 'part' || r.header.kind === 'end') {
      if (!this.ramStarted) throw new FormatError(r.offset, 'the RAM block list before RAM PART/END sections');
      await w.writeRamEos(r.header.kind);
    }
  }

  /** The records inside a RAM section (and section footers, which the writer adds itself). */
  private async ram(w: MappedRamWriter, r: MigrationRecord): Promise<void> {
    switch (r.type) {
      case 'ram-mem-size':
        checkRamSize(r.total, r.offset, this.state.pageSize, this.input.totalIn);
        this.memTotal = r.total;
        this.pending = [];
        this.pendingBytes = 0;
        if (this.memTotal === 0) await this.startRam(w);
        break;
      case 'ram-block': {
        const ignored = isIgnoredEntry(r.entry) || (this.opts.ignoredBlocks?.has(r.entry.idstr) ?? false);
        this.pending.push({ id: r.entry.idstr, usedLength: r.entry.usedLength, mrAddr: r.entry.mrAddr, pageSize: this.state.pageSize, ignored });
        this.pendingBytes += r.entry.usedLength;
        if (this.pendingBytes === this.memTotal) await this.startRam(w);
        break;
      }
      case 'ram-page':
        await w.writePage(r.block.idstr, r.pageIndex, r.data!);
        break;
      case 'ram-zero':
        // QEMU's loader refuses any other fill byte ("Found a zero page with value N"), and so do we.
        if (r.fill !== 0) throw new FormatError(r.offset, 'a zero page record with fill byte 0 (QEMU refuses others)', String(r.fill));
        await w.zeroPage(r.block.idstr, r.pageIndex);
        break;
      case 'ram-eos':
        if (this.ramStart && !this.ramStarted) throw new FormatError(r.offset, 'a RAM START section listing its blocks');
        break;
      // MULTIFD_FLUSH has no place in a mapped-ram file (QEMU's loader rejects it); footers are the writer's.
    }
  }

  private async startRam(w: MappedRamWriter): Promise<void> {
    await w.writeRamStart(this.ramStart!, this.pending);
    this.ramStarted = true;
    if (this.input.copyPages) await this.input.copyPages(w);
  }
}
