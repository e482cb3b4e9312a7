// A qcow2 image opened read-only: header, snapshot table, and raw positional reads of the file.
import { constants as fsc, promises as fsp } from 'node:fs';
import { FormatError } from '../format/errors.js';
import { decodeHeader, HEADER_PROBE, type Qcow2Header } from './header.js';
import { decodeSnapshot, ENTRY_FIXED, entryPadding, entryRest, MAX_TABLE_BYTES, type Qcow2Snapshot } from './snapshot-table.js';

const DIRECT_ALIGN = 4096;

/** A qcow2 image opened read-only: its header, its snapshot table, and positional reads of the image file. */
export class Qcow2Image {
  /** Buffers O_DIRECT refused (not page-aligned in memory): read them through the page cache. */
  private readonly misaligned = new WeakSet<ArrayBufferLike>();

  private constructor(
    readonly path: string,
    readonly fileSize: number,
    readonly header: Qcow2Header,
    readonly snapshots: Qcow2Snapshot[],
    private readonly fh: fsp.FileHandle,
    private readonly direct: fsp.FileHandle | null,
  ) {}

  /** Opens and decodes the header and snapshot table; refuses unsupported images with one line. */
  static async open(path: string): Promise<Qcow2Image> {
    const fh = await fsp.open(path, fsc.O_RDONLY);
    let direct: fsp.FileHandle | null = null;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
      const size = st.size;
      const probe = new Uint8Array(Math.min(HEADER_PROBE, size));
      await readFull(fh, probe, 0);
      const clusterBits = probe.length >= 24 ? new DataView(probe.buffer).getUint32(20) : 0;
      // The first cluster holds the header extensions; a bad cluster_bits is refused by decodeHeader.
      const first = new Uint8Array(Math.min(size, clusterBits >= 9 && clusterBits <= 21 ? 2 ** clusterBits : HEADER_PROBE));
      await readFull(fh, first, 0);
      const header = decodeHeader(first, size);
      const snapshots = await readSnapshots(fh, header, size);
      if (fsc.O_DIRECT !== undefined) direct = await fsp.open(path, fsc.O_RDONLY | fsc.O_DIRECT).catch(() => null);
      return new Qcow2Image(path, size, header, snapshots, fh, direct);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /**
   * Reads file bytes at `pos` (short only at the end of the file). Page-aligned requests into
   * page-aligned memory (the reader's wasm arena) bypass the page cache, as for plain files.
   */
  async read(into: Uint8Array, pos: number): Promise<number> {
    if (this.direct && !this.misaligned.has(into.buffer) && (into.byteOffset | pos | into.length) % DIRECT_ALIGN === 0) {
      try {
        let done = 0;
        while (done < into.length) {
          const { bytesRead } = await this.direct.read(into, done, into.length - done, pos + done);
          if (bytesRead === 0) break;
          done += bytesRead;
          if (bytesRead % DIRECT_ALIGN !== 0) break;
        }
        return done;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        this.misaligned.add(into.buffer);
      }
    }
    return readFull(this.fh, into, pos);
  }

  /** Closes the image file (and its O_DIRECT twin). */
  async close(): Promise<void> {
    await this.direct?.close();
    await this.fh.close();
  }
}

async function readFull(fh: fsp.FileHandle, into: Uint8Array, pos: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, pos + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** Entries one after another from snapshots_offset; every read bounded by the file and QEMU's table limit. */
async function readSnapshots(fh: fsp.FileHandle, h: Qcow2Header, fileSize: number): Promise<Qcow2Snapshot[]> {
  const out: Qcow2Snapshot[] = [];
  let at = h.snapshotsOffset;
  const end = Math.min(fileSize, h.snapshotsOffset + MAX_TABLE_BYTES);
  const fixed = new Uint8Array(ENTRY_FIXED);
  for (let i = 0; i < h.nbSnapshots; i++) {
    if (at + ENTRY_FIXED > end || (await readFull(fh, fixed, at)) < ENTRY_FIXED) {
      throw new FormatError(at, `snapshot ${i + 1} of ${h.nbSnapshots} inside the file and within ${MAX_TABLE_BYTES} bytes of the table start`, 'end of table', 'truncated');
    }
    const restLen = entryRest(fixed, at);
    const rest = new Uint8Array(restLen);
    // The last entry's padding to 8 bytes may lie past the end of the file (QEMU leaves it unwritten).
    const needed = restLen - entryPadding(fixed);
    if (at + ENTRY_FIXED + needed > end || (await readFull(fh, rest, at + ENTRY_FIXED)) < needed) {
      throw new FormatError(at + ENTRY_FIXED, `the rest of snapshot ${i + 1} (${restLen} bytes) inside the file`, 'end of table', 'truncated');
    }
    out.push(decodeSnapshot(fixed, rest, at, i, h.version));
    at += ENTRY_FIXED + restLen;
  }
  return out;
}
