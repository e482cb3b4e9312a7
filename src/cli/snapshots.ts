// `mram inspect disk.qcow2`: the internal snapshots that hold VM state, as a table or JSON.
import { escapeControl } from '../format/escape.js';
import type { SnapshotSummary } from '../reader/snapshot.js';
import { humanBytes, table } from './text.js';

/** The snapshots of a qcow2 image as `inspect` shows them. */
export interface SnapshotListing {
  path: string;
  size: number;
  allocated: number;
  snapshots: SnapshotSummary[];
  diskOnly: number;
}

/** The JSON document of `inspect --json` on a qcow2 image (spec/inspect.schema.json, format "qcow2"). */
export function snapshotsJson(l: SnapshotListing): object {
  return { file: { path: l.path, size: l.size, allocated: l.allocated }, format: 'qcow2', snapshots: l.snapshots, diskOnlySnapshots: l.diskOnly };
}

/** hh:mm:ss.mmm of the guest clock, as `qemu-img snapshot -l` shows it. */
export function vmClock(nsec: number): string {
  const ms = Math.floor(nsec / 1e6);
  const h = Math.floor(ms / 3_600_000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h, 4)}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}.${pad(ms % 1000, 3)}`;
}

/** The snapshot table `mram inspect IMAGE` prints. */
export function snapshotsText(l: SnapshotListing): string {
  const e = escapeControl;
  const out = [`${'file'.padEnd(13)}${e(l.path)}  (qcow2 image, ${humanBytes(l.size)})`];
  out.push(`${'snapshots'.padEnd(13)}${l.snapshots.length} with VM state${l.diskOnly ? `, ${l.diskOnly} disk-only (not shown)` : ''}`);
  const rows = l.snapshots.map((s) => [
    e(s.id),
    e(s.name),
    s.date.replace('T', ' ').replace(/\.\d+Z$/, ''),
    vmClock(s.vmClockNsec),
    humanBytes(s.vmStateSize),
    humanBytes(s.extent),
    s.format ?? `unreadable: ${e(s.error ?? '')}`,
  ]);
  if (rows.length) out.push(...table(['ID', 'NAME', 'DATE (UTC)', 'VM CLOCK', 'VMSTATE SIZE', 'EXTENT', 'FORMAT'], rows, [false, false, false, true, true, true, false]).map((r) => `  ${r}`));
  out.push(`${'usage'.padEnd(13)}mram inspect|verify|extract|convert ${e(l.path)} --snapshot NAME|ID`);
  return out.join('\n') + '\n';
}
