// Whole-process benchmark of `mram convert` (plain stream → mapped-ram, O_DIRECT) against
// `dd oflag=direct bs=1M` writing the same bytes and QEMU's own mapped-ram save of the same guest.
// Ratios come from the same run. Writes bench/results/convert-<GiB>g-runs<N>.json.
//   MRAM_BENCH_GIB=1 (guest size, 1–4)   MRAM_BENCH_DIR=<dir on the target filesystem>
//   MRAM_BENCH_RUN_PAGES=256 (length of the alternating non-zero / zero page runs)   MRAM_BENCH_RUNS=3
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { qemuSave } from './lib/qemu.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const GIB = Number(process.env.MRAM_BENCH_GIB ?? 1);
const MEM_MIB = Math.round(GIB * 1024);
const PAGE = 4096;
const workDir = fs.mkdtempSync(path.join(process.env.MRAM_BENCH_DIR ?? os.tmpdir(), 'mram-convert-bench-'));
const shmDir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'mram-bench-'));
const log = (...a) => console.error('[convert.bench]', ...a);

function cleanup() {
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.rmSync(shmDir, { recursive: true, force: true });
}
process.on('exit', cleanup);

// ---------------------------------------------------------------- guest RAM: half the pages non-zero

const RUN_PAGES = Number(process.env.MRAM_BENCH_RUN_PAGES ?? 256);

/** Runs of RUN_PAGES random pages alternate with runs of RUN_PAGES zero pages (sparse file). */
function writeRam(file) {
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, MEM_MIB * 2 ** 20);
  const run = Buffer.alloc(RUN_PAGES * PAGE);
  for (let off = 0; off < MEM_MIB * 2 ** 20; off += 2 * run.length) {
    crypto.randomFillSync(run);
    fs.writeSync(fd, run, 0, run.length, off);
  }
  fs.closeSync(fd);
}

// ---------------------------------------------------------------- measured commands

/** `mram convert` as its own process; reports wall time and the child's peak RSS (maxRSS, KiB). */
function mramConvert(args) {
  const script = `const m = await import(${JSON.stringify(path.join(root, 'dist/cli/main.js'))});
process.exitCode = await m.main(${JSON.stringify(args)});
process.stderr.write('\\nMAXRSS ' + process.resourceUsage().maxRSS + '\\n');`;
  const t0 = performance.now();
  const r = spawnSync('node', ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const secs = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`mram convert failed: ${r.stderr}`);
  const rssKiB = Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { secs, rssMiB: rssKiB / 1024 };
}

function dd(bytes, out) {
  const count = Math.ceil(bytes / 2 ** 20);
  const t0 = performance.now();
  const r = spawnSync('dd', ['if=/dev/zero', `of=${out}`, 'bs=1M', `count=${count}`, 'oflag=direct', 'conv=fdatasync'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`);
  return { secs: (performance.now() - t0) / 1000, bytes: count * 2 ** 20 };
}

const allocated = (f) => fs.statSync(f).blocks * 512;
const mbps = (bytes, secs) => bytes / secs / 1e6;

// ---------------------------------------------------------------- run

if (!fs.existsSync(path.join(root, 'dist/cli/main.js'))) spawnSync('npm', ['run', '--silent', 'build:ts'], { cwd: root, stdio: 'inherit' });
const ram = path.join(shmDir, 'ram');
log(`guest ${MEM_MIB} MiB, half the pages non-zero in runs of ${RUN_PAGES} pages, work dir ${workDir}`);
writeRam(ram);
const stream = path.join(workDir, 'guest.mig');
const streamSave = (await qemuSave({ ramPath: ram, memMiB: MEM_MIB, out: stream, mappedRam: false })).secs;
if (process.env.MRAM_BENCH_KEEP) fs.copyFileSync(stream, process.env.MRAM_BENCH_KEEP);
log(`QEMU plain-stream save: ${streamSave.toFixed(2)} s, ${(fs.statSync(stream).size / 2 ** 20).toFixed(0)} MiB`);

const qemuMr = path.join(workDir, 'qemu.mram');
const qemuMrSave = (await qemuSave({ ramPath: ram, memMiB: MEM_MIB, out: qemuMr, mappedRam: true })).secs;
fs.rmSync(qemuMr);
const qemuMfd = path.join(workDir, 'qemu-mfd.mram');
const qemuMfdSave = (await qemuSave({ ramPath: ram, memMiB: MEM_MIB, out: qemuMfd, mappedRam: true, multifd: 2, directIo: true })).secs;
const qemuBytes = allocated(qemuMfd);
fs.rmSync(qemuMfd);
log(`QEMU mapped-ram save: ${qemuMrSave.toFixed(2)} s; multifd 2 + direct-io: ${qemuMfdSave.toFixed(2)} s`);

// Convert and dd alternate, so drift of the shared disk hits both; medians are compared.
const RUNS = Number(process.env.MRAM_BENCH_RUNS ?? 3);
const out = path.join(workDir, 'ours.mram');
const convs = [];
const dds = [];
let written = 0;
let reverse = null;
for (let i = 0; i < RUNS; i++) {
  const c = mramConvert(['convert', stream, out, '--direct-io', 'on']);
  written = allocated(out);
  convs.push(c);
  log(`mram convert: ${c.secs.toFixed(2)} s, ${(written / 2 ** 20).toFixed(0)} MiB allocated, peak RSS ${c.rssMiB.toFixed(0)} MiB`);
  if (i === 0) {
    const back = path.join(workDir, 'back.mig');
    reverse = mramConvert(['convert', out, back, '--to', 'stream']);
    log(`mram convert --to stream: ${reverse.secs.toFixed(2)} s, peak RSS ${reverse.rssMiB.toFixed(0)} MiB`);
    fs.rmSync(back);
  }
  fs.rmSync(out);
  const d = dd(written, path.join(workDir, 'dd.out'));
  fs.rmSync(path.join(workDir, 'dd.out'));
  dds.push(d);
  log(`dd oflag=direct bs=1M: ${d.secs.toFixed(2)} s for ${(d.bytes / 2 ** 20).toFixed(0)} MiB`);
}
const median = (xs, f) => xs.map(f).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const conv = { secs: median(convs, (c) => c.secs), rssMiB: Math.max(...convs.map((c) => c.rssMiB)) };
const ddRun = { secs: median(dds, (d) => d.secs), bytes: dds[0].bytes };

const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  guestMiB: MEM_MIB,
  runPages: RUN_PAGES,
  pageBytesWritten: written,
  runs: RUNS,
  convert: { secs: conv.secs, MBps: mbps(written, conv.secs), peakRssMiB: conv.rssMiB, all: convs.map((c) => c.secs) },
  ddDirect: { secs: ddRun.secs, MBps: mbps(ddRun.bytes, ddRun.secs), all: dds.map((d) => d.secs) },
  qemuMappedRamSave: { secs: qemuMrSave },
  qemuMultifdDirectSave: { secs: qemuMfdSave, allocated: qemuBytes },
  qemuStreamSave: { secs: streamSave },
  reverseToStream: { secs: reverse.secs, peakRssMiB: reverse.rssMiB },
  ratios: {
    convertVsDd: mbps(written, conv.secs) / mbps(ddRun.bytes, ddRun.secs),
    qemuMappedRamVsConvertTime: qemuMrSave / conv.secs,
    qemuMultifdDirectVsConvertTime: qemuMfdSave / conv.secs,
  },
};
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, `bench/results/convert-${GIB}g-runs${RUN_PAGES}.json`), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
const ok = result.ratios.convertVsDd >= 0.9 && result.ratios.qemuMappedRamVsConvertTime > 1 && conv.rssMiB < 200;
log(`targets: convert ≥ 0.9× dd: ${result.ratios.convertVsDd.toFixed(2)}×; faster than QEMU mapped-ram save: ${result.ratios.qemuMappedRamVsConvertTime.toFixed(2)}×; peak RSS < 200 MiB: ${conv.rssMiB.toFixed(0)} MiB → ${ok ? 'MET' : 'NOT MET'}`);
