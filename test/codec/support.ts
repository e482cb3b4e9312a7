// Committed QEMU saves as bytes in memory, for the codec tests (no file is opened by the code under test).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { decodeLibvirtFixed, isLibvirtMagic } from '../../src/codec/libvirt.js';

export const FIXTURES = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../fixtures');

/** What a fixture's .json says about the QEMU save (written by the harness from QEMU's own query-migrate). */
export interface SaveMeta {
  name: string;
  qemuVersion: string;
  mappedRam: boolean;
  memMiB: number;
  ramBlock: string;
  pageSize: number;
  offset: number;
  migBytes: number;
  running: boolean;
  stats: { ram: { total: number; normal: number; duplicate: number } };
}

/** Every committed save with a .json sibling: name without `.mig.gz`. */
export const SAVES = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.mig.gz') && fs.existsSync(path.join(FIXTURES, f.replace(/\.mig\.gz$/, '.json'))))
  .map((f) => f.replace(/\.mig\.gz$/, ''));

const cache = new Map<string, Buffer>();

/** The save's bytes, decompressed. */
export function saveBytes(name: string): Buffer {
  let b = cache.get(name);
  if (!b) cache.set(name, (b = zlib.gunzipSync(fs.readFileSync(path.join(FIXTURES, `${name}.mig.gz`)))));
  return b;
}

export function saveMeta(name: string): SaveMeta {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as SaveMeta;
}

/** Where the QEMU stream starts: after a libvirt header (its data length says where), else the save's offset. */
export function streamStart(bytes: Uint8Array, meta: SaveMeta): number {
  return isLibvirtMagic(bytes.subarray(0, 16)) ? decodeLibvirtFixed(bytes, bytes.length).dataOffset : meta.offset;
}
