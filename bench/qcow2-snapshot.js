// `verify --digest` of a mapped-ram VM state inside a qcow2 internal snapshot, against the same
// command on a `migrate file:` save of the same guest (QEMU 11, both mapped-ram). Issue #15 asks
// for a speed ratio (file time / snapshot time) of at least 0.8. Runs alternate, medians compared.
//   MRAM_TRIXIE_ROOT=... node bench/qcow2-snapshot.js [--mem-mib 1024] [--runs 3] [--dir /tmp] [--keep]
// Writes bench/results/qcow2-snapshot.json; bench/FINDINGS.md's section is hand-written from it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, stats } from './lib/measure.js';
import { startGuest } from './lib/qemu.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TRIXIE = [path.join(ROOT, 'scripts/trixie'), 'qemu-system-x86_64'];
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const memMiB = Number(arg('--mem-mib', 1024));
const runs = Number(arg('--runs', 3));
// QEMU 11 runs in the chroot, which sees the host's /tmp and /dev/shm only.
const work = fs.mkdtempSync(path.join(arg('--dir', '/tmp'), 'mram-qcow2-bench-'));
const shm = fs.mkdtempSync('/dev/shm/mram-qcow2-bench-');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function qemuImg(...args) {
  const r = run(TRIXIE[0], ['qemu-img', ...args]);
  return r;
}

/** Guest RAM: 3 of every 4 MiB random, 1 zero (zero pages stay holes in both layouts). */
function writeRam(file) {
  const fd = fs.openSync(file, 'w');
  for (let mib = 0; mib < memMiB; mib += 4) {
    const chunk = mib % 16 === 12 ? Buffer.alloc(4 << 20) : crypto.randomBytes(4 << 20);
    fs.writeSync(fd, chunk, 0, chunk.length, mib << 20);
  }
  fs.closeSync(fd);
}

async function main() {
  const ram = path.join(shm, 'ram');
  const disk = path.join(work, 'disk.qcow2');
  const mig = path.join(work, 'save.mig');
  writeRam(ram);
  await qemuImg('create', '-q', '-f', 'qcow2', disk, '64M');
  const g = await startGuest({ memMiB, ramPath: ram, command: TRIXIE, extraArgs: ['-drive', `file=${disk},format=qcow2,if=ide,index=0,media=disk`] });
  try {
    await g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'mapped-ram', state: true }] });
    const out = await g.qmp.execute('human-monitor-command', { 'command-line': 'savevm bench' });
    if (out.trim()) throw new Error(`savevm: ${out}`);
    await g.qmp.execute('migrate', { uri: `file:${mig}` });
    for (;;) {
      const info = await g.qmp.execute('query-migrate');
      if (info.status === 'completed') break;
      if (info.status === 'failed') throw new Error(`migrate failed: ${info['error-desc']}`);
      await sleep(20);
    }
  } finally {
    await g.kill();
  }
  fs.rmSync(shm, { recursive: true, force: true });
  const mram = path.join(ROOT, 'bin/mram.js');
  const cases = { file: [mram, 'verify', '--digest', '--json', mig], snapshot: [mram, 'verify', '--digest', '--json', disk, '--snapshot', 'bench'] };
  const secs = { file: [], snapshot: [] };
  const digests = {};
  for (let i = 0; i < runs; i++) {
    for (const [name, args] of Object.entries(cases)) {
      const r = await run(process.execPath, args);
      secs[name].push(r.secs);
      digests[name] = JSON.parse(r.stdout).digests.mem;
    }
  }
  if (digests.file !== digests.snapshot) throw new Error('the two saves hold different RAM');
  const file = stats(secs.file);
  const snapshot = stats(secs.snapshot);
  const result = {
    date: new Date().toISOString(),
    memMiB,
    runs,
    fileSecs: secs.file,
    snapshotSecs: secs.snapshot,
    fileMedian: file.median,
    snapshotMedian: snapshot.median,
    speedRatio: file.median / snapshot.median,
    fileBytes: fs.statSync(mig).size,
    imageBytes: fs.statSync(disk).size,
  };
  fs.writeFileSync(path.join(ROOT, 'bench/results/qcow2-snapshot.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`verify --digest, ${memMiB} MiB guest: file ${file.median.toFixed(2)} s, snapshot ${snapshot.median.toFixed(2)} s (medians of ${runs}); speed ratio ${result.speedRatio.toFixed(2)}x`);
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => {
    if (process.argv.includes('--keep')) console.log(`kept ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(shm, { recursive: true, force: true });
  });
