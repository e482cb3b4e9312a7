// Writes a mapped-ram guest whose every other page is random (the #17 write-side shape) with a
// given build's MappedRamWriter, and prints how long it took:
//   node bench/scattered-guest.js [BUILD_DIR=.] [OUT=guest.mig] [GIB=1]
// Then time extract with the same build: /usr/bin/time node BUILD/bin/mram.js extract OUT --block pc.ram -o m.raw -q
import crypto from 'node:crypto';
import path from 'node:path';

const [root = '.', file = 'guest.mig', gib = '1'] = process.argv.slice(2);
const bytes = Number(gib) * 2 ** 30;
const { MappedRamWriter } = await import(path.resolve(root, 'dist/writer/index.js'));
const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: ['mapped-ram'], uuid: null, subsectionOrder: ['configuration/capabilities'] };
const t = Date.now();
const w = await MappedRamWriter.create(file, { configuration: config, blocks: [{ id: 'pc.ram', usedLength: bytes }], force: true });
const chunk = Buffer.alloc(64 << 20);
for (let off = 0; off < bytes; off += chunk.length) {
  crypto.randomFillSync(chunk);
  for (let p = 1; p < chunk.length / 4096; p += 2) chunk.fill(0, p * 4096, (p + 1) * 4096);
  await w.writePages('pc.ram', off / 4096, chunk);
}
await w.writeVmdesc(JSON.stringify({ page_size: 4096, devices: [] }));
await w.finish();
console.log(JSON.stringify({ file, gib: Number(gib), writeSeconds: (Date.now() - t) / 1000 }));
