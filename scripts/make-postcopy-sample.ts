// Writes test/fixtures/postcopy-hugepage-32m.mig.gz: a real QEMU plain stream whose block list has
// the optional per-block page size (ram_save_setup writes it when postcopy-ram is on and a block's
// page size differs from the host's). The guest has a 2 MiB hugetlb pc-dimm ("hp") beside the
// seeded 32 MiB `mem`. QEMU reports the save as failed afterwards (postcopy needs a return path a
// file cannot give), but the file is complete: EOF record and vmdesc.
//   npx vite-node scripts/make-postcopy-sample.ts [--qemu 10|11]     (root: reserves 2 hugepages)
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { COMMITTED_DIR } from '../test/support/fixtures.js';
import { writeGuestRam } from '../test/support/guest-ram.js';
import { generation, makeTempDir, qemuVersion, startGuest, type MigrateInfo } from '../test/support/qemu.js';

const i = process.argv.indexOf('--qemu');
const gen = generation((i >= 0 ? process.argv[i + 1] : '10') as '10' | '11');
const free = Number(/HugePages_Free:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
if (free < 1) fs.writeFileSync('/proc/sys/vm/nr_hugepages', '2');
const shm = makeTempDir('mram-pc-', true);
const ramPath = path.join(shm, 'ram');
writeGuestRam(ramPath, 32, 1);
const out = path.join(shm, 'out.mig');
const g = await startGuest({
  memMiB: 32,
  ramPath,
  generation: gen,
  extraArgs: ['-object', 'memory-backend-memfd,id=hp,size=2M,hugetlb=on,hugetlbsize=2M', '-m', '32M,slots=1,maxmem=64M', '-device', 'pc-dimm,id=dimm0,memdev=hp'],
});
try {
  await g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }] });
  await g.qmp.execute('migrate', { uri: `file:${out}` });
  let info: MigrateInfo;
  do {
    await new Promise((r) => setTimeout(r, 50));
    info = await g.qmp.execute<MigrateInfo>('query-migrate');
  } while (info.status === 'setup' || info.status === 'active' || info.status === 'device');
  console.log(`QEMU ${qemuVersion(gen)}: migrate ${info.status} (${info['error-desc'] ?? ''})`);
} finally {
  await g.kill();
}
const name = `postcopy-hugepage-32m${gen.fixtureSuffix}`;
fs.writeFileSync(path.join(COMMITTED_DIR, `${name}.mig.gz`), zlib.gzipSync(fs.readFileSync(out), { level: 9 }));
fs.writeFileSync(path.join(COMMITTED_DIR, `${name}.txt`), `${qemuVersion(gen)} ${g.args.filter((a) => !a.startsWith('unix:')).join(' ')}\n`);
console.log(`${name}: ${fs.statSync(out).size} bytes`);
fs.rmSync(shm, { recursive: true, force: true });
