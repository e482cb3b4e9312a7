// qcow2 internal snapshots as migration sources: which snapshots hold VM state, picking one by
// name or id, and sizing its VM state (a mapped-ram layout extends past the recorded size).
import { FormatError, UsageError } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import { FileSource } from '../io/file-source.js';
import type { PositionalSource } from '../io/source.js';
import { checkLoadvmRefcounts, isQcow2Magic, Qcow2Image, VmStateSource, type Qcow2Snapshot } from '../qcow2/index.js';
import { detectFormat, type MigrationFormat } from './detect.js';

/** One internal snapshot as `inspect` lists it. */
export interface SnapshotSummary {
  id: string;
  name: string;
  /** Wall-clock time of the snapshot (ISO 8601, UTC). */
  date: string;
  /** Guest clock at the snapshot, in nanoseconds. */
  vmClockNsec: number;
  /** vm_state_size as QEMU recorded it. */
  vmStateSize: number;
  /** Bytes the VM state spans (the mapped-ram layout's extent; = vmStateSize for a stream). */
  extent: number;
  format: MigrationFormat | null;
  /** Why the VM state could not be read (format null), else null. */
  error: string | null;
  /** Virtual disk size at the snapshot (null for entries without extra data). */
  diskSize: number | null;
}

/** True when the file starts with the qcow2 magic. */
export async function isQcow2File(path: string): Promise<boolean> {
  const f = await FileSource.open(path);
  try {
    const head = new Uint8Array(Math.min(4, f.size));
    await f.readInto(head, 0);
    return isQcow2Magic(head);
  } finally {
    await f.close();
  }
}

/** Every internal snapshot of a qcow2 image that holds VM state, in table order; plus the disk-only count. */
export async function listSnapshots(path: string): Promise<{ snapshots: SnapshotSummary[]; diskOnly: number }> {
  const image = await Qcow2Image.open(path);
  try {
    const snapshots: SnapshotSummary[] = [];
    for (const sn of image.snapshots.filter((s) => s.vmStateSize > 0)) {
      const base = {
        id: sn.id,
        name: sn.name,
        date: new Date(sn.dateSec * 1000 + Math.floor(sn.dateNsec / 1e6)).toISOString(),
        vmClockNsec: sn.vmClockNsec,
        vmStateSize: sn.vmStateSize,
        diskSize: sn.diskSize === null ? null : Number(sn.diskSize),
      };
      try {
        const src = await VmStateSource.open(image, sn);
        await checkLoadvmRefcounts(image, sn);
        const format = await sizeVmState(src);
        snapshots.push({ ...base, extent: src.size, format, error: null });
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        snapshots.push({ ...base, extent: 0, format: null, error: e.message });
      }
    }
    return { snapshots, diskOnly: image.snapshots.length - snapshots.length };
  } finally {
    await image.close();
  }
}

/**
 * The VM state of the snapshot named or numbered `selector` in a qcow2 image, as a source every
 * reader takes. A selector matching no snapshot with VM state, or several, is refused with one
 * line listing the candidates.
 */
export async function openSnapshotSource(path: string, selector: string): Promise<PositionalSource> {
  const image = await Qcow2Image.open(path);
  try {
    const sn = pickSnapshot(image.snapshots, selector);
    const src = await VmStateSource.open(image, sn);
    // What QEMU's loadvm would refuse before reading the VM state is refused before reading it here.
    await checkLoadvmRefcounts(image, sn);
    await sizeVmState(src);
    return src;
  } catch (e) {
    await image.close();
    throw e;
  }
}

/** Matches by id or by name (QEMU's find_snapshot_by_id_or_name), refusing ambiguity. */
export function pickSnapshot(all: Qcow2Snapshot[], selector: string): Qcow2Snapshot {
  const withState = all.filter((s) => s.vmStateSize > 0);
  const matches = withState.filter((s) => s.id === selector || s.name === selector);
  if (matches.length === 1) return matches[0]!;
  const list = (ss: Qcow2Snapshot[]) => ss.map((s) => `id ${escapeControl(s.id)} "${escapeControl(s.name)}"`).join(', ') || 'none';
  const diskOnly = all.find((s) => s.vmStateSize === 0 && (s.id === selector || s.name === selector));
  if (matches.length === 0 && diskOnly) throw new UsageError(`snapshot "${escapeControl(selector)}" holds no VM state (disk only); snapshots with VM state: ${list(withState)}`);
  if (matches.length === 0) throw new UsageError(`no snapshot "${escapeControl(selector)}" with VM state; candidates: ${list(withState)}`);
  throw new UsageError(`snapshot "${escapeControl(selector)}" is ambiguous: ${list(matches)}`);
}

/** The refusal for a qcow2 image given without a snapshot: one line naming the candidates. */
export async function snapshotNeeded(path: string): Promise<UsageError> {
  const image = await Qcow2Image.open(path);
  try {
    const withState = image.snapshots.filter((s) => s.vmStateSize > 0);
    const list = withState.map((s) => `id ${escapeControl(s.id)} "${escapeControl(s.name)}"`).join(', ') || 'none';
    return new UsageError(`${escapeControl(path)} is a qcow2 image: choose its VM state with --snapshot NAME|ID (snapshots with VM state: ${list})`);
  } finally {
    await image.close();
  }
}

/**
 * A stream's VM state is exactly vm_state_size bytes. A mapped-ram layout's page areas are not
 * counted in it (QEMU counts the bytes written through the stream), so its extent is the end of
 * its last non-zero byte — its vmdesc — bounded by the snapshot's L1 coverage.
 */
async function sizeVmState(src: VmStateSource): Promise<MigrationFormat> {
  src.size = Math.min(src.coverage, Math.max(src.recordedSize, 1 << 20));
  const format = await detectFormat(src, 0);
  await src.limit(format === 'mapped-ram' ? Math.max(src.recordedSize, await src.dataEnd()) : src.recordedSize);
  return format;
}
