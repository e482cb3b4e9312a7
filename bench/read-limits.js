// Read-side limits of #17, whole-process, on one 2 GiB mapped-ram guest whose every other page is random:
//   verify                  vs dd if=FILE iflag=direct bs=1M of=/dev/null         (target ≥ 0.8×)
//   verify --digest         vs openssl dgst -sha256 of the raw image, cached       (target ≥ 0.8×)
//   verify --content-digest vs the slower of dd iflag=direct of the file and openssl dgst -sha256 of the
//                           present pages alone, cached (it must read the one and hash the other; no target)
// Runs alternate mram and its reference; a ratio is the median of per-run ratios (reference s / mram s),
// so load drift hits both sides. The raw image lives on /dev/shm (cached by construction).
// Writes bench/results/read-limits.json (rows: command, work, work_bytes, mram_s, limit, limit_s, ratio,
// target, met).   MRAM_BENCH_GIB=2  MRAM_BENCH_RUNS=5  MRAM_BENCH_DIR=<dir on the target file system>
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { plainNodeEnvironment, timedSync } from './lib/measure.js';
import { blockedByDisk } from './lib/verdict.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const GIB = Number(process.env.MRAM_BENCH_GIB ?? 2);
const RUNS = Number(process.env.MRAM_BENCH_RUNS ?? 5);
const PAGE = 4096;
const bytes = Math.round(GIB * 2 ** 30);
const dir = fs.mkdtempSync(path.join(process.env.MRAM_BENCH_DIR ?? os.tmpdir(), 'mram-read-limits-'));
const shm = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'mram-read-limits-'));
const file = path.join(dir, 'guest.mig');
const raw = path.join(shm, 'guest.raw');
const present = path.join(shm, 'present.raw');
const log = (...a) => console.error('[read-limits]', ...a);
const environment = plainNodeEnvironment();
process.on('exit', () => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(shm, { recursive: true, force: true });
});
const { MappedRamWriter } = await import(path.join(root, 'dist/writer/index.js'));

/** The mapped-ram file (every other page random), its raw image and its present pages alone; sha256 of the image. */
async function makeFiles() {
  const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: ['mapped-ram'], uuid: null, subsectionOrder: ['configuration/capabilities'] };
  const w = await MappedRamWriter.create(file, { configuration: config, blocks: [{ id: 'pc.ram', usedLength: bytes }], force: true });
  const rawFd = fs.openSync(raw, 'w');
  const presentFd = fs.openSync(present, 'w');
  const hash = crypto.createHash('sha256');
  const chunk = Buffer.alloc(64 << 20);
  for (let off = 0; off < bytes; off += chunk.length) {
    crypto.randomFillSync(chunk);
    for (let p = 1; p < chunk.length / PAGE; p += 2) chunk.fill(0, p * PAGE, (p + 1) * PAGE);
    await w.writePages('pc.ram', off / PAGE, chunk);
    fs.writeSync(rawFd, chunk);
    for (let p = 0; p < chunk.length / PAGE; p += 2) fs.writeSync(presentFd, chunk, p * PAGE, PAGE);
    hash.update(chunk);
  }
  fs.closeSync(rawFd);
  fs.closeSync(presentFd);
  await w.writeVmdesc(JSON.stringify({ page_size: PAGE, devices: [] }));
  await w.finish();
  return hash.digest('hex');
}

const timed = timedSync;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mram = (...args) => [process.execPath, [path.join(root, 'bin/mram.js'), ...args, '-q']];

log(`writing a ${GIB} GiB mapped-ram file (every other page random) in ${dir}, its raw image in ${shm}`);
const sha = await makeFiles();
const pairs = [
  { command: 'verify', ours: mram('verify', file), limit: 'dd iflag=direct bs=1M of the file', ref: ['dd', [`if=${file}`, 'iflag=direct', 'bs=1M', 'of=/dev/null', 'status=none']], target: 0.8, workBytes: bytes },
  { command: 'verify --digest', ours: mram('verify', '--digest', file), limit: 'openssl dgst -sha256 of the raw image (cached)', ref: ['openssl', ['dgst', '-sha256', raw]], target: 0.8, workBytes: bytes, alsoDd: true },
  { command: 'verify --content-digest', ours: mram('verify', '--content-digest', file), limit: 'max(dd iflag=direct of the file, openssl dgst -sha256 of the present pages)', ref: [['dd', [`if=${file}`, 'iflag=direct', 'bs=1M', 'of=/dev/null', 'status=none']], ['openssl', ['dgst', '-sha256', present]]], target: null, workBytes: bytes },
];
const rows = [];
for (const p of pairs) {
  const ours = [];
  const refs = [];
  const ratios = [];
  const dds = [];
  for (let i = 0; i < RUNS; i++) {
    // The read floor too: on a disk slower than SHA-256, verify --digest cannot beat it.
    if (p.alsoDd) dds.push(timed('dd', [`if=${file}`, 'iflag=direct', 'bs=1M', 'of=/dev/null', 'status=none']).s);
    // A list of references: the limit is the slowest of them (each is a floor the work cannot go below).
    const r = Array.isArray(p.ref[0]) ? Math.max(...p.ref.map((x) => timed(...x).s)) : timed(...p.ref).s;
    const o = timed(...p.ours);
    if (p.command === 'verify --digest' && !o.stdout.includes(sha)) throw new Error(`verify --digest printed no ${sha}:\n${o.stdout}`);
    refs.push(r);
    ours.push(o.s);
    ratios.push(r / o.s);
  }
  const ratio = median(ratios);
  const floor = dds.length ? median(dds) : null;
  rows.push({
    command: p.command,
    work: `${GIB} GiB guest, every other page random`,
    work_bytes: p.workBytes,
    mram_s: median(ours),
    limit: p.limit,
    limit_s: median(refs),
    ratio,
    target: p.target === null ? 'O(present pages); no ratio target' : `≥ ${p.target}×`,
    met: p.target === null ? null : ratio >= p.target,
    runs: { mram_s: ours, limit_s: refs, ...(dds.length ? { dd_s: dds } : {}) },
    ...(dds.length ? { dd_s: floor, note: 'dd_s: dd iflag=direct of the file in the same runs (the read floor)' } : {}),
    // On a disk slower than SHA-256, reading the file alone takes longer than the target allows.
    ...(floor === null ? {} : blockedByDisk({ ratio, target: p.target, limit_s: median(refs), floor_s: floor, floor: 'reading the file (dd iflag=direct)', mramOverFloor: median(dds.map((d, i) => d / ours[i])) })),
  });
  log(`${p.command}: ${median(ours).toFixed(2)} s, ${p.limit} ${median(refs).toFixed(2)} s: ${ratio.toFixed(2)}×`);
}
const result = { machine: `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}`, loadavg: os.loadavg(), environment, guestGiB: GIB, runs: RUNS, rows };
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, 'bench/results/read-limits.json'), JSON.stringify(result, null, 2) + '\n');
