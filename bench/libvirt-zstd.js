// Decompression must not be the bottleneck: `mram convert` of a zstd libvirt save to sparse, against
// `zstd -dc` of the same payload to /dev/null (the floor: decompression alone), alternating, one run.
//   node bench/libvirt-zstd.js [--mem MiB] [--rounds N] [--dir DIR]
// Prints a Markdown table; bench/FINDINGS.md's "libvirt zstd saves" section is kept by hand.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { qemuSave, qemuVersion } from './lib/qemu.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { mem: { type: 'string', default: '1024' }, rounds: { type: 'string', default: '3' }, dir: { type: 'string' } } });
const memMiB = Number(values.mem);
const rounds = Number(values.rounds);
const dir = fs.mkdtempSync(path.join(values.dir ?? os.tmpdir(), 'mram-bench-zstd-'));
const ramPath = fs.mkdtempSync('/dev/shm/mram-bench-zstd-') + '/ram';

/** Guest RAM shaped like a used guest: runs of pages that are half random, half text-like, between runs of zero pages. */
function fillRam() {
  const size = memMiB << 20;
  const fd = fs.openSync(ramPath, 'w');
  const page = Buffer.alloc(4096);
  const words = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789 ');
  let p = 0;
  let seed = 1;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n) + 1;
  while (p < size / 4096) {
    const data = rnd(256);
    for (let i = 0; i < data && p < size / 4096; i++, p++) {
      crypto.randomFillSync(page, 0, 2048);
      for (let o = 2048; o < 4096; o++) page[o] = words[(o + p) % words.length];
      fs.writeSync(fd, page, 0, 4096, p * 4096);
    }
    p += rnd(256);
  }
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
}

function libvirtHeader(dataFormat) {
  const xml = Buffer.from(`<domain type='qemu'><name>bench</name><memory unit='MiB'>${memMiB}</memory></domain>\n\0`);
  const dataLen = xml.length + 64 * 1024;
  const h = Buffer.alloc(92 + dataLen);
  h.write('LibvirtQemudSave', 0, 'latin1');
  [2, dataLen, 1, dataFormat, 0].forEach((v, i) => h.writeUInt32LE(v, 16 + 4 * i));
  xml.copy(h, 92);
  return h;
}

async function timed(cmd, args, opts = {}) {
  const t0 = performance.now();
  const p = spawn(cmd, args, { stdio: opts.stdio ?? ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise((r) => p.once('close', r));
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${code}`);
  return (performance.now() - t0) / 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

try {
  fillRam();
  const stream = path.join(dir, 'vm.stream');
  await qemuSave({ ramPath, memMiB, out: stream, mappedRam: false });
  const payload = path.join(dir, 'vm.zst');
  if (spawnSync('sh', ['-c', `zstd -q -c < '${stream}' > '${payload}'`]).status !== 0) throw new Error('zstd -c failed');
  const save = path.join(dir, 'vm.save');
  fs.writeFileSync(save, libvirtHeader(5));
  fs.appendFileSync(save, fs.readFileSync(payload));
  const out = path.join(dir, 'vm.sparse');
  const zstd = [];
  const mram = [];
  const plain = [];
  for (let i = 0; i < rounds; i++) {
    const devnull = fs.openSync('/dev/null', 'w');
    const input = fs.openSync(payload, 'r');
    zstd.push(await timed('zstd', ['-dc'], { stdio: [input, devnull, 'inherit'] }));
    fs.closeSync(devnull);
    fs.closeSync(input);
    fs.rmSync(out, { force: true });
    mram.push(await timed(process.execPath, [path.join(root, 'bin/mram.js'), 'convert', save, out]));
    fs.rmSync(out, { force: true });
    plain.push(await timed(process.execPath, [path.join(root, 'bin/mram.js'), 'convert', stream, out]));
    fs.rmSync(out, { force: true });
  }
  const streamBytes = fs.statSync(stream).size;
  const gb = (s) => (streamBytes / s / 1e9).toFixed(2);
  console.log(`QEMU ${qemuVersion()}, zstd ${spawnSync('zstd', ['-V'], { encoding: 'utf8' }).stdout.trim()}, ${os.cpus().length} CPUs, ${memMiB} MiB guest`);
  console.log(`stream ${(streamBytes / 2 ** 20).toFixed(0)} MiB, zstd payload ${(fs.statSync(payload).size / 2 ** 20).toFixed(0)} MiB, ${rounds} alternating rounds, medians\n`);
  console.log('| | seconds | GB/s of stream |');
  console.log('|---|---:|---:|');
  console.log(`| \`zstd -dc\` payload → /dev/null | ${median(zstd).toFixed(2)} | ${gb(median(zstd))} |`);
  console.log(`| \`mram convert\` zstd save → sparse | ${median(mram).toFixed(2)} | ${gb(median(mram))} |`);
  console.log(`| \`mram convert\` the uncompressed stream → mapped-ram | ${median(plain).toFixed(2)} | ${gb(median(plain))} |`);
  console.log(`\nratio mram convert of the zstd save / zstd -dc alone: ${(median(mram) / median(zstd)).toFixed(2)}×`);
  console.log(`ratio mram convert of the zstd save / of the uncompressed stream: ${(median(mram) / median(plain)).toFixed(2)}×`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(path.dirname(ramPath), { recursive: true, force: true });
}
