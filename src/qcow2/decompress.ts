// Compressed clusters: zlib (raw deflate, as qcow2_zlib_decompress) through Node, zstd through the
// `zstd` program (Node 20 has no zstd). Output must fill the cluster exactly, as QEMU requires.
import { childProcess, nodeZlib } from '../io/builtins.js';
import { le32 } from '../format/bytes.js';
import { FormatError } from '../format/errors.js';
import type { CompressionType } from './header.js';

/** Decompresses one cluster's compressed bytes (`at`: their file offset, for errors). */
export async function decompressCluster(type: CompressionType, data: Uint8Array, clusterSize: number, at: number): Promise<Uint8Array> {
  const out = type === 'zlib' ? inflateZlib(data, clusterSize, at) : await inflateZstd(data.subarray(0, zstdFrameLength(data, at)), clusterSize, at);
  if (out.length < clusterSize) throw new FormatError(at, `a compressed cluster that expands to ${clusterSize} bytes`, `${out.length} bytes`);
  return out.subarray(0, clusterSize);
}

function inflateZlib(data: Uint8Array, clusterSize: number, at: number): Uint8Array {
  try {
    // Sync flush: the descriptor rounds the length up to 512-byte sectors, so bytes of the next
    // cluster may follow; the cap keeps a hostile stream from expanding past one cluster.
    const zlib = nodeZlib();
    return zlib.inflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: clusterSize });
  } catch (e) {
    throw new FormatError(at, 'a zlib (raw deflate) compressed cluster', (e as Error).message);
  }
}

/**
 * Length of the zstd frame at the start of `b`: QEMU writes one frame per cluster, followed by
 * whatever comes next in the sector, which the zstd program would refuse as a second frame.
 */
export function zstdFrameLength(b: Uint8Array, at: number): number {
  const bad = (what: string) => new FormatError(at, `a zstd frame (${what})`, 'end of data or a malformed frame');
  if (b.length < 6 || le32(b, 0) !== 0xfd2fb528) throw new FormatError(at, 'zstd frame magic 0xfd2fb528', b.length >= 4 ? `0x${le32(b, 0).toString(16)}` : 'end of data');
  const fhd = b[4]!;
  const single = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const dictFlag = fhd & 3;
  const checksum = (fhd >> 2) & 1;
  let p = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag]! + [single, 2, 4, 8][fcsFlag]!;
  for (;;) {
    if (p + 3 > b.length) throw bad('block header');
    const h = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16);
    const type = (h >> 1) & 3;
    const size = h >>> 3;
    if (type === 3) throw bad('reserved block type');
    p += 3 + (type === 1 ? 1 : size);
    if (p > b.length) throw bad('block data');
    if (h & 1) break;
  }
  p += checksum ? 4 : 0;
  if (p > b.length) throw bad('checksum');
  return p;
}

function inflateZstd(frame: Uint8Array, clusterSize: number, at: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = new Uint8Array(clusterSize);
    let n = 0;
    let err = '';
    let failed: Error | null = null;
    child.on('error', (e: NodeJS.ErrnoException) => {
      failed = e.code === 'ENOENT' ? Object.assign(new Error('the image compresses clusters with zstd: install the zstd program (not found on PATH)'), { code: 'ENOZSTD' }) : e;
    });
    child.stdout.on('data', (d: Buffer) => {
      const k = Math.min(d.length, clusterSize - n);
      out.set(d.subarray(0, k), n);
      n += k;
    });
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 400) err += d.toString();
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(frame);
    child.on('close', (code) => {
      if (failed) return reject(failed);
      if (code !== 0) return reject(new FormatError(at, 'a zstd compressed cluster', err.trim().split('\n')[0] || `zstd exit status ${code}`));
      resolve(out.subarray(0, n));
    });
  });
}
