// mapped-ram → plain stream that QEMU loads with mapped-ram off: block list without headers, pages
// as PAGE/ZERO records (CONTINUE within a block) in one RAM PART section, everything else copied.
// A record-to-record map: each input record becomes the output record `encode` writes.
import { ByteWriter } from '../codec/byte-writer.js';
import { encode } from '../codec/encode.js';
import { deviceVersionMismatch, type MigrationRecord } from '../codec/records.js';
import type { SectionHeader } from '../codec/section.js';
import { CAPABILITY_MAPPED_RAM, RAM_SECTION_IDSTR } from '../format/constants.js';
import { FormatError } from '../format/errors.js';
import { Arena } from '../kernel/arena.js';
import type { MigrationFile } from '../reader/migration-file.js';
import { rewriteVmdescConfiguration, withCapability } from '../writer/configuration.js';
import type { ByteSink } from './byte-sink.js';
import { throttle, type ProgressListener } from './progress.js';

/** Options of `mappedRamToStream`. */
export interface ToStreamOptions {
  onWarning?: (message: string) => void;
  onProgress?: ProgressListener;
}

/** What `mappedRamToStream` wrote. */
export interface StreamSummary {
  bytes: number;
  pages: number;
  zeroPages: number;
}

const READ_CHUNK = 8 << 20;

/** Writes `file` (mapped-ram) to `sink` as a plain stream. The sink is finished on success, aborted on failure. */
export async function mappedRamToStream(file: MigrationFile, sink: ByteSink, opts: ToStreamOptions = {}): Promise<StreamSummary> {
  const w = new ByteWriter();
  let ram: SectionHeader | null = null;
  let pagesDone = false;
  const summary: StreamSummary = { bytes: 0, pages: 0, zeroPages: 0 };
  const progress = throttle(opts.onProgress);
  let pagesIn = 0;
  const emit = async (r: MigrationRecord) => {
    await sink.write(encode(r, { into: w }));
    w.length = 0;
  };
  try {
    for await (const r of file.records({ deviceData: true })) {
      if (r.type === 'trailing') opts.onWarning?.(trailingWarning(r));
      else await emit(toStreamRecord(r, file));
      if (r.type === 'section' && r.header.kind === 'start' && isRam(r.header)) ram = r.header;
      // All pages in one PART right after START, as QEMU's first iteration would send them.
      if (r.type !== 'section-footer' || !ram || r.header.sectionId !== ram.sectionId || r.header.kind !== 'start' || pagesDone) continue;
      await emit({ type: 'section', offset: r.offset, header: { ...ram, kind: 'part' } });
      const counts = await writePages(file, sink, (n) => {
        pagesIn += n;
        progress.tick(() => ({ bytesIn: pagesIn, totalIn: null, bytesOut: sink.bytesWritten }));
      });
      summary.pages = counts.pages;
      summary.zeroPages = counts.zeroPages;
      await emit({ type: 'ram-eos', offset: r.offset });
      await emit({ type: 'section-footer', offset: r.offset, sectionOffset: r.offset, header: { ...ram, kind: 'part' } });
      pagesDone = true;
    }
    await sink.finish();
    summary.bytes = sink.bytesWritten;
    progress.final({ bytesIn: file.size, totalIn: file.size, bytesOut: sink.bytesWritten });
    return summary;
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

const isRam = (h: SectionHeader) => h.idstr === RAM_SECTION_IDSTR && h.instanceId === 0;

/** The record a plain stream has where the mapped-ram file has `r`. */
function toStreamRecord(r: MigrationRecord, file: MigrationFile): MigrationRecord {
  switch (r.type) {
    case 'configuration':
      return { ...r, config: withCapability(r.config, CAPABILITY_MAPPED_RAM, false) };
    case 'section':
      if (!isRam(r.header) && r.header.kind !== 'full') throw new FormatError(r.offset, 'only the "ram" iterative section', JSON.stringify(r.header.idstr));
      return r;
    case 'ram-block':
      // No mapped-ram header, and no page size (postcopy-ram never pairs with mapped-ram).
      return { ...r, entry: { ...r.entry, blockPageSize: null, mappedRam: null } };
    case 'ram-page':
    case 'ram-zero':
    case 'ram-flush':
      throw new FormatError(r.offset, 'a mapped-ram file (no page records in the main stream)');
    case 'device-state': {
      const refused = deviceVersionMismatch(r);
      if (refused) throw refused;
      return r;
    }
    case 'vmdesc': {
      const config = file.configuration && withCapability(file.configuration, CAPABILITY_MAPPED_RAM, false);
      return config ? { ...r, vmdesc: { ...r.vmdesc, json: rewriteVmdescConfiguration(r.vmdesc.json, config) } } : r;
    }
    case 'stop':
      throw new FormatError(r.offset, 'a record mram can convert', r.reason);
    default:
      return r;
  }
}

/** PAGE records for present non-zero pages, ZERO records for present pages that scan as zero. */
async function writePages(file: MigrationFile, sink: ByteSink, onRead: (bytes: number) => void): Promise<{ pages: number; zeroPages: number }> {
  const arena = new Arena({ bytes: READ_CHUNK + (1 << 20) });
  const region = arena.alloc(READ_CHUNK);
  const w = new ByteWriter();
  let pages = 0;
  let zeroPages = 0;
  let last: string | null = null;
  for (const b of file.blocks) {
    const ps = b.pageSize;
    const perChunk = READ_CHUNK / ps;
    for (const run of b.presentRuns()) {
      for (let p = run.start; p < run.start + run.count; p += perChunk) {
        const n = Math.min(perChunk, run.start + run.count - p);
        const data = region.view.subarray(0, n * ps);
        await b.readPages(data, p, n);
        onRead(data.length);
        const nz = arena.scan(data, ps).bitmap;
        for (let i = 0; i < n; i++) {
          const zero = ((nz[i >>> 3]! >>> (i & 7)) & 1) === 0;
          const page = { offset: b.pageOffset(p + i) ?? 0, block: b.entry, pageIndex: p + i, continued: last === b.id };
          w.length = 0;
          // The page's bytes go from the read buffer to the sink: the record is encoded without them.
          const head = encode(zero ? { type: 'ram-zero', ...page, fill: 0 } : { type: 'ram-page', ...page, dataOffset: page.offset, data: null }, { pageSize: ps, into: w });
          if (sink.room < head.length + (zero ? 0 : ps)) await sink.flush();
          sink.put(head);
          if (zero) zeroPages++;
          else sink.put(data.subarray(i * ps, (i + 1) * ps));
          pages++;
          last = b.id;
        }
      }
    }
  }
  region.free();
  return { pages, zeroPages };
}

/** The warning for bytes after the stream (QEMU reads none of them). */
export function trailingWarning(r: { length: number; more: boolean }): string {
  return `dropped ${r.more ? 'more than ' : ''}${r.length} bytes after the end of the migration stream`;
}
