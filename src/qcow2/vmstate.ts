// The VM state of one internal snapshot as a PositionalSource: guest offsets from the snapshot's
// vmstate area (qcow2_vm_state_offset() in block/qcow2.h) mapped through its L1/L2 tables.
import { be32 } from '../format/bytes.js';
import { FormatError, hex } from '../format/errors.js';
import type { PositionalSource } from '../io/source.js';
import { decompressCluster } from './decompress.js';
import { checkTable, compressedSpan, l1Coverage, MAX_L1_ENTRIES, vmStateL1Index, type Qcow2Header } from './header.js';
import type { Qcow2Image } from './image.js';
import type { Qcow2Snapshot } from './snapshot-table.js';

/** Bytes of L2 tables kept in memory; a table is one cluster (at most 2 MiB). */
const L2_CACHE_BYTES = 8 << 20;
/** Decompressed clusters kept: page-sized reads of one compressed cluster decompress it once. */
const COMPRESSED_CACHE = 4;
/** Positions stay exact numbers. */
const MAX_AREA = 2 ** 52;

/** How one guest cluster reads: the L2 entry decoded (docs/interop/qcow2.txt "Cluster mapping"). */
export type ClusterMapping =
  | { kind: 'unallocated' }
  | { kind: 'zero' }
  | { kind: 'data'; host: number }
  | { kind: 'compressed'; host: number; bytes: number }
  /** Extended L2: bit i of `alloc` = subcluster i holds data at host + i*subcluster; of `zero` = reads as zeros. */
  | { kind: 'subclusters'; host: number; alloc: number; zero: number };

const UNALLOCATED: ClusterMapping = { kind: 'unallocated' };
const ZERO: ClusterMapping = { kind: 'zero' };

interface Segment {
  dst: number;
  len: number;
  /** File offset of the bytes, or -1 for zeros. */
  host: number;
}

const L1E_OFFSET_HIGH = 0x00ffffff;
const L2E_OFFSET_LOW = 0xfffffe00;

/** The VM state of one internal snapshot as a PositionalSource: reads mapped through its L1/L2 tables (zeros for unallocated clusters, compressed clusters inflated). */
export class VmStateSource implements PositionalSource {
  readonly path: string;
  /** Bytes of the vmstate area the snapshot's L1 table covers. */
  readonly coverage: number;
  size: number;
  allocated = 0;
  private readonly h: Qcow2Header;
  private readonly entriesPerL2: number;
  private readonly entryBytes: number;
  private readonly l2Cache = new Map<number, Uint8Array>();
  private readonly l2CacheMax: number;
  private readonly zcache = new Map<number, Uint8Array>();

  private constructor(
    private readonly image: Qcow2Image,
    readonly snapshot: Qcow2Snapshot,
    /** L2 table offset (0: none) per L1 entry of the vmstate area. */
    private readonly l2Offsets: Float64Array,
  ) {
    this.h = image.header;
    // Raw bytes: output sites escape control characters.
    this.path = `${image.path} snapshot "${snapshot.name || snapshot.id}"`;
    this.entryBytes = this.h.extendedL2 ? 16 : 8;
    this.entriesPerL2 = this.h.clusterSize / this.entryBytes;
    this.coverage = Math.min(l2Offsets.length * l1Coverage(this.h), MAX_AREA);
    this.size = this.coverage;
    this.l2CacheMax = Math.max(2, Math.floor(L2_CACHE_BYTES / this.h.clusterSize));
  }

  /** Reads the snapshot's L1 entries from the vmstate area on, checking each L2 table's place. */
  static async open(image: Qcow2Image, sn: Qcow2Snapshot): Promise<VmStateSource> {
    const h = image.header;
    const at = sn.entryOffset;
    if (sn.l1Size > MAX_L1_ENTRIES) throw new FormatError(at + 8, `a snapshot L1 table of at most ${MAX_L1_ENTRIES} entries`, String(sn.l1Size));
    checkTable(h, sn.l1TableOffset, sn.l1Size * 8, at, `the L1 table of snapshot ${sn.id}`, image.fileSize);
    const first = vmStateL1Index(h, sn.diskSize ?? h.size);
    const count = first >= BigInt(sn.l1Size) ? 0 : sn.l1Size - Number(first);
    if (count === 0 && sn.vmStateSize > 0) {
      throw new FormatError(at + 8, `a snapshot L1 table reaching the vmstate area (entry ${first})`, `${sn.l1Size} entries`);
    }
    const raw = new Uint8Array(count * 8);
    const l1Start = sn.l1TableOffset + (sn.l1Size - count) * 8;
    await image.read(raw, l1Start);
    const offsets = new Float64Array(count);
    const metadata = metadataRegions(image, sn);
    const seen = new Set<number>();
    for (let i = 0; i < count; i++) {
      const hi = be32(raw, i * 8) & L1E_OFFSET_HIGH;
      const lo = be32(raw, i * 8 + 4) & L2E_OFFSET_LOW;
      if (hi === 0 && lo === 0) continue;
      const where = l1Start + i * 8;
      const off = hi * 2 ** 32 + lo;
      if (off % h.clusterSize !== 0) throw new FormatError(where, `an L2 table offset aligned to the cluster size ${h.clusterSize}`, hex(off));
      if (off + h.clusterSize > image.fileSize) throw new FormatError(where, `an L2 table inside the file of ${image.fileSize} bytes`, `offset ${hex(off)}`, 'truncated');
      const clash = metadata.find((m) => off < m.end && off + h.clusterSize > m.start);
      if (clash) throw new FormatError(where, 'an L2 table apart from the image metadata', `offset ${hex(off)} inside ${clash.what}`);
      // Each table is read once per pass: a hostile L1 cannot make a pass longer than the file.
      if (seen.has(off)) throw new FormatError(where, 'an L2 table used by one L1 entry only', `offset ${hex(off)} again`);
      seen.add(off);
      offsets[i] = off;
    }
    return new VmStateSource(image, sn, offsets);
  }

  /** The recorded size (vm_state_size), which with mapped-ram is less than the layout's extent. */
  get recordedSize(): number {
    return this.snapshot.vmStateSize;
  }

  /** Sets the apparent size (at most the L1 coverage) and counts the allocated bytes below it. */
  async limit(size: number): Promise<void> {
    this.size = Math.min(size, this.coverage);
    let allocated = 0;
    const clusters = Math.ceil(this.size / this.h.clusterSize);
    const sub = this.h.clusterSize / 32;
    for (let c = 0; c < clusters; c++) {
      if (this.l2Offsets[Math.floor(c / this.entriesPerL2)] === 0) {
        c = (Math.floor(c / this.entriesPerL2) + 1) * this.entriesPerL2 - 1;
        continue;
      }
      const found = this.lookup(c);
      const m = found instanceof Promise ? await found : found;
      if (m.kind === 'data' || m.kind === 'compressed') allocated += this.h.clusterSize;
      else if (m.kind === 'subclusters') allocated += popcount(m.alloc) * sub;
    }
    this.allocated = Math.min(allocated, this.size);
  }

  /**
   * End of the last non-zero byte of the vmstate area (0 if none): the extent of a layout that
   * ends with data (a migration stream ends with its vmdesc or EOF record), found from the end.
   */
  async dataEnd(): Promise<number> {
    const cs = this.h.clusterSize;
    const buf = new Uint8Array(cs);
    for (let t = this.l2Offsets.length - 1; t >= 0; t--) {
      if (this.l2Offsets[t] === 0) continue;
      for (let e = this.entriesPerL2 - 1; e >= 0; e--) {
        const c = t * this.entriesPerL2 + e;
        if (c * cs >= this.coverage) continue;
        const m = await this.mapping(c);
        if (m.kind === 'unallocated' || m.kind === 'zero') continue;
        const got = await this.readRange(buf, c * cs, cs);
        for (let i = got - 1; i >= 0; i--) if (buf[i] !== 0) return c * cs + i + 1;
      }
    }
    return 0;
  }

  async readInto(into: Uint8Array, position: number): Promise<number> {
    const n = Math.max(0, Math.min(into.length, this.size - position));
    return this.readRange(into, position, n);
  }

  /** Closes the image this source reads through. */
  close(): Promise<void> {
    return this.image.close();
  }

  /** Decodes the L2 entry of guest cluster `c` of the vmstate area. */
  async mapping(c: number): Promise<ClusterMapping> {
    const m = this.lookup(c);
    return m instanceof Promise ? await m : m;
  }

  /** Synchronous while the L2 table is cached: the read path pays no promise per cluster. */
  private lookup(c: number): ClusterMapping | Promise<ClusterMapping> {
    const t = Math.floor(c / this.entriesPerL2);
    if (!this.l2Offsets[t]) return UNALLOCATED;
    const table = this.l2Cache.get(t);
    return table ? this.decode(c, t, table) : this.l2Table(t).then((tb) => this.decode(c, t, tb));
  }

  private decode(c: number, t: number, table: Uint8Array): ClusterMapping {
    const l2Offset = this.l2Offsets[t]!;
    const i = (c - t * this.entriesPerL2) * this.entryBytes;
    const at = l2Offset + i;
    const hi = be32(table, i);
    const lo = be32(table, i + 4);
    const h = this.h;
    if (hi & 0x40000000) {
      const { host, bytes } = compressedSpan((BigInt(hi) << 32n) | BigInt(lo), h.clusterBits);
      if (host < h.clusterSize || host >= this.image.fileSize) throw new FormatError(at, 'compressed cluster data inside the file, after the header', `offset ${hex(host)}`);
      return { kind: 'compressed', host, bytes };
    }
    const high = hi & L1E_OFFSET_HIGH;
    const host = high * 2 ** 32 + (lo & L2E_OFFSET_LOW);
    if (h.extendedL2) {
      const bitmapZero = be32(table, i + 8);
      const alloc = be32(table, i + 12);
      if (host === 0) {
        if (alloc !== 0) throw new FormatError(at + 8, 'no allocated subclusters in an unallocated cluster', hex(alloc));
        return bitmapZero === 0xffffffff ? ZERO : bitmapZero === 0 ? UNALLOCATED : { kind: 'subclusters', host: 0, alloc: 0, zero: bitmapZero };
      }
      this.checkData(host, l2Offset, at);
      if (alloc === 0xffffffff) return { kind: 'data', host };
      return { kind: 'subclusters', host, alloc, zero: bitmapZero };
    }
    if (lo & 1) return ZERO;
    if (host === 0) return UNALLOCATED;
    this.checkData(host, l2Offset, at);
    return { kind: 'data', host };
  }

  private checkData(host: number, l2Offset: number, at: number): void {
    const cs = this.h.clusterSize;
    if (host % cs !== 0) throw new FormatError(at, `a data cluster offset aligned to the cluster size ${cs}`, hex(host));
    if (host < cs) throw new FormatError(at, 'a data cluster after the header cluster', `offset ${hex(host)}`);
    if (host === l2Offset) throw new FormatError(at, 'a data cluster apart from its L2 table', `offset ${hex(host)}, the L2 table itself`);
    if (host >= this.image.fileSize) throw new FormatError(at, `a data cluster inside the file of ${this.image.fileSize} bytes`, `offset ${hex(host)}`, 'truncated');
  }

  /** Loads a table into the cache (first in, first out: the vmstate is read front to back). */
  private async l2Table(t: number): Promise<Uint8Array> {
    const table = new Uint8Array(this.h.clusterSize);
    const got = await this.image.read(table, this.l2Offsets[t]!);
    if (got < table.length) throw new FormatError(this.l2Offsets[t]! + got, 'a whole L2 table', 'end of file', 'truncated');
    if (this.l2Cache.size >= this.l2CacheMax) this.l2Cache.delete(this.l2Cache.keys().next().value!);
    this.l2Cache.set(t, table);
    return table;
  }

  /** Reads `n` bytes at area position `pos`: contiguous host runs as one read each, all in flight. */
  private async readRange(into: Uint8Array, pos: number, n: number): Promise<number> {
    const cs = this.h.clusterSize;
    const segments: Segment[] = [];
    const push = (dst: number, len: number, host: number) => {
      const last = segments[segments.length - 1];
      if (last && last.dst + last.len === dst && (host < 0 ? last.host < 0 : last.host >= 0 && last.host + last.len === host)) last.len += len;
      else segments.push({ dst, len, host });
    };
    const compressed: Promise<void>[] = [];
    let done = 0;
    while (done < n) {
      const at = pos + done;
      const c = Math.floor(at / cs);
      const inCluster = at - c * cs;
      const len = Math.min(cs - inCluster, n - done);
      const found = this.lookup(c);
      const m = found instanceof Promise ? await found : found;
      if (m.kind === 'data') push(done, len, m.host + inCluster);
      else if (m.kind === 'unallocated' || m.kind === 'zero') push(done, len, -1);
      else if (m.kind === 'compressed') {
        const dst = done;
        compressed.push(this.decompressed(m.host, m.bytes).then((d) => into.set(d.subarray(inCluster, inCluster + len), dst)));
      } else {
        const sub = cs / 32;
        for (let o = inCluster; o < inCluster + len; ) {
          const s = Math.floor(o / sub);
          const k = Math.min((s + 1) * sub, inCluster + len) - o;
          const has = (m.alloc >>> s) & 1 && !((m.zero >>> s) & 1);
          push(done + o - inCluster, k, has ? m.host + o : -1);
          o += k;
        }
      }
      done += len;
    }
    await Promise.all([
      ...compressed,
      ...segments.map(async (s) => {
        const dst = into.subarray(s.dst, s.dst + s.len);
        if (s.host < 0) return void dst.fill(0);
        // A cluster whose tail lies past the end of the file reads as zeros there, as QEMU's file driver does.
        const got = await this.image.read(dst, s.host);
        if (got < s.len) dst.fill(0, got);
      }),
    ]);
    return n;
  }

  private async decompressed(host: number, bytes: number): Promise<Uint8Array> {
    const hit = this.zcache.get(host);
    if (hit) return hit;
    const raw = new Uint8Array(Math.min(bytes, this.image.fileSize - host));
    await this.image.read(raw, host);
    const out = await decompressCluster(this.h.compression, raw, this.h.clusterSize, host);
    if (this.zcache.size >= COMPRESSED_CACHE) this.zcache.delete(this.zcache.keys().next().value!);
    this.zcache.set(host, out);
    return out;
  }
}

interface Region {
  start: number;
  end: number;
  what: string;
}

/** Places an L2 table must not overlap: the header cluster, the L1 tables, the snapshot table. */
function metadataRegions(image: Qcow2Image, sn: Qcow2Snapshot): Region[] {
  const h = image.header;
  const regions: Region[] = [
    { start: 0, end: h.clusterSize, what: 'the header cluster' },
    { start: sn.l1TableOffset, end: sn.l1TableOffset + sn.l1Size * 8, what: `the L1 table of snapshot ${sn.id}` },
    { start: h.l1TableOffset, end: h.l1TableOffset + h.l1Size * 8, what: 'the active L1 table' },
    { start: h.refcountTableOffset, end: h.refcountTableOffset + h.refcountTableClusters * h.clusterSize, what: 'the refcount table' },
  ];
  const last = image.snapshots[image.snapshots.length - 1];
  if (last) regions.push({ start: h.snapshotsOffset, end: last.entryOffset + 40, what: 'the snapshot table' });
  return regions;
}

function popcount(x: number): number {
  let n = 0;
  for (let b = x >>> 0; b; b &= b - 1) n++;
  return n;
}
