// What loadvm needs of an image's refcounts. Before QEMU reads a snapshot's VM state it reverts the
// disk (qcow2_snapshot_goto): every L2 table and data cluster the snapshot's L1 table references gets
// its refcount raised, then those of the active L1 table get theirs lowered. A cluster outside the
// file, an unusable refcount block, or a refcount that would drop below zero makes that fail
// ("Failed to load snapshot"), so such a snapshot is refused here too, with the offset of the entry.
import { FormatError, hex } from '../format/errors.js';
import { compressedSpan } from './header.js';
import type { Qcow2Image } from './image.js';
import type { Qcow2Snapshot } from './snapshot-table.js';

const L1E_OFFSET_MASK = 0x00fffffffffffe00n;
const L2E_OFFSET_MASK = 0x00fffffffffffe00n;
const L2E_COMPRESSED = 1n << 62n;
const REFT_OFFSET_MASK = 0xfffffffffffffe00n;
/** Refcount blocks kept while walking (the walk goes mostly front to back). */
const BLOCK_CACHE = 64;

/** A cluster the walked L1 table references, and the entry that references it. */
type Visit = (cluster: number, at: number, what: string) => Promise<void>;

/**
 * Refuses the snapshot when QEMU's loadvm could not revert the disk to it, or would free part of it
 * on the way. Every cluster its L1 table references (L2 tables, data clusters, compressed cluster
 * spans) is raised by one, then every cluster the active L1 table references is lowered by one:
 * each must lie inside the file, cluster-aligned where QEMU requires it, with a usable refcount
 * block; none may drop below zero (QEMU fails), and none the snapshot uses may reach zero (QEMU
 * frees it, and the VM state then reads zeros there). Reads each L2 table at most twice per L1 table
 * and each refcount block it needs; bounded by the file's size.
 */
export async function checkLoadvmRefcounts(image: Qcow2Image, sn: Qcow2Snapshot): Promise<void> {
  const h = image.header;
  const refcounts = await RefcountReader.open(image);
  const raised = new Int32Array(Math.ceil(image.fileSize / h.clusterSize));
  const lowered = new Int32Array(raised.length);
  const snapshot = (visit: Visit) => walkL1(image, sn.l1TableOffset, sn.l1Size, `the L1 table of snapshot ${sn.id}`, visit);
  const after = async (c: number) => (await refcounts.refcount(c)) + raised[c]! - lowered[c]!;
  const state = async (c: number) => `cluster at ${hex(c * h.clusterSize)}: refcount ${await refcounts.refcount(c)}, raised ${raised[c]}, lowered ${lowered[c]}`;
  await snapshot(async (c) => {
    raised[c]!++;
    await refcounts.refcount(c);
  });
  await walkL1(image, h.l1TableOffset, h.l1Size, 'the active L1 table', async (c, at, what) => {
    lowered[c]!++;
    if ((await after(c)) < 0) throw new FormatError(at, `${what} whose refcount stays at zero or more when loadvm drops the active state's references`, await state(c));
  });
  await snapshot(async (c, at, what) => {
    if ((await after(c)) < 1) throw new FormatError(at, `${what} of the snapshot that loadvm keeps (its refcount would reach zero and QEMU would free it)`, await state(c));
  });
}

/** Visits the L2 tables an L1 table names and the clusters their entries reference. */
async function walkL1(image: Qcow2Image, offset: number, entries: number, what: string, visit: Visit): Promise<void> {
  const h = image.header;
  const l1 = new Uint8Array(entries * 8);
  if ((await image.read(l1, offset)) < l1.length) throw new FormatError(offset, `${what} inside the file`, 'end of file', 'truncated');
  const view = new DataView(l1.buffer);
  const seen = new Set<number>();
  for (let i = 0; i < entries; i++) {
    const at = offset + i * 8;
    const l2 = Number(view.getBigUint64(i * 8) & L1E_OFFSET_MASK);
    if (l2 === 0) continue;
    await visit(clusterOf(image, l2, at, 'an L2 table', true), at, 'an L2 table');
    // A table named twice would be counted twice by QEMU; no image QEMU writes has one.
    if (seen.has(l2)) throw new FormatError(at, `an L2 table named by one entry of ${what}`, `offset ${hex(l2)} again`);
    seen.add(l2);
    await walkL2(image, l2, visit);
  }
}

/** Visits every cluster an L2 table's entries reference. */
async function walkL2(image: Qcow2Image, l2: number, visit: Visit): Promise<void> {
  const h = image.header;
  const table = new Uint8Array(h.clusterSize);
  if ((await image.read(table, l2)) < table.length) throw new FormatError(l2, 'a whole L2 table', 'end of file', 'truncated');
  const view = new DataView(table.buffer);
  const step = h.extendedL2 ? 16 : 8;
  for (let i = 0; i < table.length; i += step) {
    const entry = view.getBigUint64(i);
    if (entry === 0n) continue;
    const at = l2 + i;
    if (entry & L2E_COMPRESSED) {
      // QEMU updates the refcount of every cluster the compressed bytes touch.
      const { host, bytes } = compressedSpan(entry, h.clusterBits);
      const first = clusterOf(image, host, at, 'compressed cluster data', false);
      const last = clusterOf(image, host + bytes - 1, at, 'compressed cluster data', false);
      for (let c = first; c <= last; c++) await visit(c, at, 'compressed cluster data');
      continue;
    }
    const host = Number(entry & L2E_OFFSET_MASK);
    if (host !== 0) await visit(clusterOf(image, host, at, 'a data cluster', true), at, 'a data cluster');
  }
}

/** The cluster index of `offset`, which must be inside the file (and cluster-aligned when `aligned`). */
function clusterOf(image: Qcow2Image, offset: number, at: number, what: string, aligned: boolean): number {
  const cs = image.header.clusterSize;
  if (aligned && offset % cs !== 0) throw new FormatError(at, `${what} aligned to the cluster size ${cs}`, hex(offset));
  if (offset >= image.fileSize) throw new FormatError(at, `${what} inside the file of ${image.fileSize} bytes (loadvm updates the refcount of every cluster a snapshot uses)`, `offset ${hex(offset)}`);
  return Math.floor(offset / cs);
}

/** Refcount lookups through the refcount table, with its blocks cached. */
class RefcountReader {
  private readonly blocks = new Map<number, Uint8Array>();
  private readonly bits: number;
  private readonly perBlock: number;

  private constructor(
    private readonly image: Qcow2Image,
    private readonly table: DataView,
  ) {
    this.bits = 2 ** image.header.refcountOrder;
    this.perBlock = (image.header.clusterSize * 8) / this.bits;
  }

  /** Reads the refcount table, which must lie inside the file. */
  static async open(image: Qcow2Image): Promise<RefcountReader> {
    const h = image.header;
    const bytes = h.refcountTableClusters * h.clusterSize;
    // Checked before allocating: the size comes from the header.
    if (h.refcountTableOffset + bytes > image.fileSize) throw new FormatError(48, `the refcount table (${bytes} bytes at ${hex(h.refcountTableOffset)}) inside the file`, 'end of file', 'truncated');
    const t = new Uint8Array(bytes);
    await image.read(t, h.refcountTableOffset);
    return new RefcountReader(image, new DataView(t.buffer));
  }

  /** The refcount of a cluster inside the file; its refcount block must be usable. */
  async refcount(cluster: number): Promise<number> {
    const h = this.image.header;
    const table = this.table;
    const index = Math.floor(cluster / this.perBlock);
    if (index * 8 >= table.byteLength) return 0;
    const at = h.refcountTableOffset + index * 8;
    const block = Number(table.getBigUint64(index * 8) & REFT_OFFSET_MASK);
    if (block === 0) return 0;
    if (block % h.clusterSize !== 0) throw new FormatError(at, `a refcount block aligned to the cluster size ${h.clusterSize}`, hex(block));
    if (block + h.clusterSize > this.image.fileSize) throw new FormatError(at, `a refcount block inside the file of ${this.image.fileSize} bytes`, `offset ${hex(block)}`);
    const b = await this.block(block);
    const i = cluster % this.perBlock;
    if (this.bits >= 8) {
      let v = 0;
      for (let k = 0; k < this.bits / 8; k++) v = v * 256 + b[i * (this.bits / 8) + k]!;
      return v;
    }
    return (b[Math.floor((i * this.bits) / 8)]! >> ((i * this.bits) % 8)) & ((1 << this.bits) - 1);
  }

  private async block(offset: number): Promise<Uint8Array> {
    const hit = this.blocks.get(offset);
    if (hit) return hit;
    const b = new Uint8Array(this.image.header.clusterSize);
    await this.image.read(b, offset);
    if (this.blocks.size >= BLOCK_CACHE) this.blocks.delete(this.blocks.keys().next().value!);
    this.blocks.set(offset, b);
    return b;
  }
}
