// Helpers of the verify/extract/fuzz suites: private copies of fixtures, byte patches, the clean layout.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { MappedRamBlock } from '../../src/reader/ram-block.js';

export function tempDir(prefix = 'mram-verify-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A private copy of `src` in `dir` (the fixture cache is shared with other suites). */
export function copyOf(src: string, dir: string, name = path.basename(src)): string {
  const p = path.join(dir, name);
  fs.copyFileSync(src, p);
  return p;
}

export function patch(file: string, offset: number, bytes: ArrayLike<number>): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.from(Array.from(bytes)), 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

export function be64(v: bigint): number[] {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return [...b];
}

export function be32(v: number): number[] {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return [...b];
}

export function sha256File(p: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

export interface BlockGeometry {
  id: string;
  entryOffset: number;
  headerOffset: number;
  bitmapOffset: number;
  pagesOffset: number;
  usedLength: number;
  pages: number;
  present: number[];
  absent: number[];
}

/** Where things are in a clean mapped-ram file, from the reader. */
export async function geometry(file: string, offset?: number) {
  const f = await MigrationFile.open(file, { offset });
  try {
    const blocks: BlockGeometry[] = f.blocks.map((b) => {
      const m = b as MappedRamBlock;
      const present: number[] = [];
      const absent: number[] = [];
      for (let p = 0; p < b.pages; p++) (b.isPresent(p) ? present : absent).push(p);
      return { id: b.id, entryOffset: b.entry.entryOffset, headerOffset: b.entry.mappedRam?.headerOffset ?? -1, bitmapOffset: m.bitmapOffset ?? -1, pagesOffset: m.pagesOffset ?? -1, usedLength: b.usedLength, pages: b.pages, present, absent };
    });
    return { blocks, sections: [...f.sections], devices: [...f.devices], size: f.size, streamOffset: f.streamOffset };
  } finally {
    await f.close();
  }
}
