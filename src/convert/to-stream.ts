// mapped-ram → plain stream that QEMU loads with mapped-ram off: block list without headers, pages
// as PAGE/ZERO records (CONTINUE within a block) in one RAM PART section, everything else copied.
import { ByteWriter } from '../codec/byte-writer.js';
import { writeConfiguration, type Configuration } from '../codec/configuration.js';
import { writeRamWord } from '../codec/ram.js';
import { deviceVersionMismatch } from '../codec/records.js';
import { writeCommand, writeFooter, writeSectionHeader, type SectionHeader } from '../codec/section.js';
import { CAPABILITY_MAPPED_RAM, QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION, RAM_SECTION_IDSTR, RamFlag, RecordType } from '../format/constants.js';
import { FormatError } from '../format/errors.js';
import { stringToBytes } from '../format/bytes.js';
import { Arena } from '../kernel/arena.js';
import type { MigrationFile } from '../reader/migration-file.js';
import { rewriteVmdescConfiguration, withCapability } from '../writer/configuration.js';
import type { ByteSink } from './byte-sink.js';
import { throttle, type ProgressListener } from './progress.js';

export interface ToStreamOptions {
  onWarning?: (message: string) => void;
  onProgress?: ProgressListener;
}

export interface StreamSummary {
  bytes: number;
  pages: number;
  zeroPages: number;
}

const READ_CHUNK = 8 << 20;

/** Writes `file` (mapped-ram) to `sink` as a plain stream. The sink is finished on success, aborted on failure. */
export async function mappedRamToStream(file: MigrationFile, sink: ByteSink, opts: ToStreamOptions = {}): Promise<StreamSummary> {
  const w = new ByteWriter();
  const emit = async () => {
    await sink.write(w.view());
    w.length = 0;
  };
  let config: Configuration | null = null;
  let ram: SectionHeader | null = null;
  let pagesDone = false;
  const summary: StreamSummary = { bytes: 0, pages: 0, zeroPages: 0 };
  const progress = throttle(opts.onProgress);
  let pagesIn = 0;
  try {
    for await (const r of file.records({ deviceData: true })) {
      switch (r.type) {
        case 'header':
          w.u32(QEMU_VM_FILE_MAGIC).u32(QEMU_VM_FILE_VERSION);
          break;
        case 'configuration':
          config = withCapability(r.config, CAPABILITY_MAPPED_RAM, false);
          writeConfiguration(w, config);
          break;
        case 'command':
          writeCommand(w, r.command);
          break;
        case 'section':
          if (r.header.idstr === RAM_SECTION_IDSTR && r.header.instanceId === 0) {
            if (r.header.kind === 'start') ram = r.header;
            writeSectionHeader(w, r.header);
          } else if (r.header.kind !== 'full') {
            throw new FormatError(r.offset, 'only the "ram" iterative section', JSON.stringify(r.header.idstr));
          } else writeSectionHeader(w, r.header);
          break;
        case 'ram-mem-size':
          writeRamWord(w, r.total, RamFlag.MEM_SIZE);
          break;
        case 'ram-block':
          w.countedString(r.entry.idstr).u64(r.entry.usedLength);
          if (r.entry.mrAddr !== null) w.u64(r.entry.mrAddr);
          break;
        case 'ram-eos':
          writeRamWord(w, 0, RamFlag.EOS);
          break;
        case 'ram-page':
        case 'ram-zero':
        case 'ram-flush':
          throw new FormatError(r.offset, 'a mapped-ram file (no page records in the main stream)');
        case 'device-state': {
          const refused = deviceVersionMismatch(r);
          if (refused) throw refused;
          w.bytes(r.data!);
          break;
        }
        case 'section-footer':
          writeFooter(w, r.header.sectionId);
          if (ram && r.header.sectionId === ram.sectionId && r.header.kind === 'start' && !pagesDone) {
            await emit();
            // All pages in one PART right after START, as QEMU's first iteration would send them.
            writeSectionHeader(w, { ...ram, kind: 'part' });
            await emit();
            const counts = await writePages(file, sink, (n) => {
              pagesIn += n;
              progress.tick(() => ({ bytesIn: pagesIn, totalIn: null, bytesOut: sink.bytesWritten }));
            });
            summary.pages = counts.pages;
            summary.zeroPages = counts.zeroPages;
            writeRamWord(w, 0, RamFlag.EOS);
            writeFooter(w, ram.sectionId);
            pagesDone = true;
          }
          break;
        case 'eof':
          w.u8(RecordType.Eof);
          break;
        case 'vmdesc': {
          const json = new TextEncoder().encode(config ? rewriteVmdescConfiguration(r.vmdesc.json, config) : r.vmdesc.json);
          w.u8(RecordType.VmDescription).u32(json.length).bytes(json);
          break;
        }
        case 'trailing':
          opts.onWarning?.(trailingWarning(r));
          break;
        case 'stop':
          throw new FormatError(r.offset, 'a record mram can convert', r.reason);
      }
      if (w.length > 0) await emit();
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

/** PAGE records for present non-zero pages, ZERO records for present pages that scan as zero. */
async function writePages(file: MigrationFile, sink: ByteSink, onRead: (bytes: number) => void): Promise<{ pages: number; zeroPages: number }> {
  const arena = new Arena({ bytes: READ_CHUNK + (1 << 20) });
  const region = arena.alloc(READ_CHUNK);
  const word = new Uint8Array(8);
  const dv = new DataView(word.buffer);
  let pages = 0;
  let zeroPages = 0;
  let last: string | null = null;
  for (const b of file.blocks) {
    const ps = b.pageSize;
    const perChunk = READ_CHUNK / ps;
    const name = stringToBytes(b.id);
    for (const run of b.presentRuns()) {
      for (let p = run.start; p < run.start + run.count; p += perChunk) {
        const n = Math.min(perChunk, run.start + run.count - p);
        const data = region.view.subarray(0, n * ps);
        await b.readPages(data, p, n);
        onRead(data.length);
        const nz = arena.scan(data, ps).bitmap;
        for (let i = 0; i < n; i++) {
          const zero = ((nz[i >>> 3]! >>> (i & 7)) & 1) === 0;
          const cont = last === b.id;
          const need = 8 + (cont ? 0 : 1 + name.length) + (zero ? 1 : ps);
          if (sink.room < need) await sink.flush();
          const addr = (p + i) * ps;
          const flags = (zero ? RamFlag.ZERO : RamFlag.PAGE) | (cont ? RamFlag.CONTINUE : 0);
          dv.setUint32(0, Math.floor(addr / 0x1_0000_0000));
          dv.setUint32(4, (addr >>> 0) + flags);
          sink.put(word);
          if (!cont) {
            sink.put(Uint8Array.of(name.length));
            sink.put(name);
          }
          if (zero) {
            sink.put(Uint8Array.of(0));
            zeroPages++;
          } else sink.put(data.subarray(i * ps, (i + 1) * ps));
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
