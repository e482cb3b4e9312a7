// Whole-process benchmark of `mram verify --digest` on a large mapped-ram file against
// `dd if=FILE iflag=direct bs=1M of=/dev/null` reading the same file. Both bypass the page cache
// (O_DIRECT), so neither gets a warm-cache advantage. Writes bench/results/verify-<GiB>g.json.
//   MRAM_BENCH_GIB=2 (guest size)   MRAM_BENCH_DIR=<dir on the target filesystem>   MRAM_BENCH_RUNS=5
// Runs alternate dd and verify; the ratio is the median of per-run ratios, so load drift hits both sides.
//   MRAM_BENCH_RUN_PAGES=256 (length of the alternating non-zero / zero page runs)
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const GIB = Number(process.env.MRAM_BENCH_GIB ?? 2);
const RUNS = Number(process.env.MRAM_BENCH_RUNS ?? 5);
const RUN_PAGES = Number(process.env.MRAM_BENCH_RUN_PAGES ?? 256);
const PAGE = 4096;
const bytes = Math.round(GIB * 2 ** 30);
const workDir = fs.mkdtempSync(path.join(process.env.MRAM_BENCH_DIR ?? os.tmpdir(), 'mram-verify-bench-'));
const file = path.join(workDir, 'guest.mig');
const log = (...a) => console.error('[verify.bench]', ...a);
process.on('exit', () => fs.rmSync(workDir, { recursive: true, force: true }));

if (!fs.existsSync(path.join(root, 'dist/cli/mram.cjs'))) spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
const { MappedRamWriter } = await import(path.join(root, 'dist/writer/index.js'));

/** A mapped-ram file of one `pc.ram` block: runs of RUN_PAGES random pages alternate with zero runs. */
async function makeFile() {
  const config = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: ['mapped-ram'], uuid: null, subsectionOrder: ['configuration/capabilities'] };
  const w = await MappedRamWriter.create(file, { configuration: config, blocks: [{ id: 'pc.ram', usedLength: bytes }], force: true });
  const run = Buffer.alloc(RUN_PAGES * PAGE);
  const hash = crypto.createHash('sha256');
  const zero = Buffer.alloc(run.length);
  for (let off = 0; off < bytes; off += 2 * run.length) {
    crypto.randomFillSync(run);
    await w.writePages('pc.ram', off / PAGE, run);
    hash.update(run);
    if (off + run.length < bytes) hash.update(zero.subarray(0, Math.min(run.length, bytes - off - run.length)));
  }
  await w.writeVmdesc(JSON.stringify({ page_size: PAGE, devices: [] }));
  const s = await w.finish();
  return { size: s.size, sha256: hash.digest('hex') };
}

function timed(cmd, args) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { s, stdout: r.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

log(`writing a ${GIB} GiB mapped-ram file (half the pages non-zero) in ${workDir}`);
const made = await makeFile();
const st = fs.statSync(file);
log(`file: ${st.size} bytes apparent, ${st.blocks * 512} allocated`);

const rows = { dd: [], verifyDigest: [], verify: [] };
let digestOk = null;
for (let i = 0; i < RUNS; i++) {
  rows.dd.push(timed('dd', [`if=${file}`, 'iflag=direct', 'bs=1M', 'of=/dev/null', 'status=none']).s);
  const v = timed(process.execPath, [path.join(root, 'bin/mram.js'), 'verify', '--digest', '--json', file]);
  rows.verifyDigest.push(v.s);
  digestOk = JSON.parse(v.stdout).digests['pc.ram'] === made.sha256;
  rows.verify.push(timed(process.execPath, [path.join(root, 'bin/mram.js'), 'verify', file]).s);
}

const dd = median(rows.dd);
const result = {
  machine: `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}, load ${os.loadavg()[0].toFixed(1)}`,
  guestGiB: GIB,
  fileBytes: st.size,
  allocatedBytes: st.blocks * 512,
  runs: RUNS,
  seconds: rows,
  median: { dd, verifyDigest: median(rows.verifyDigest), verify: median(rows.verify) },
  ratio: {
    verifyDigestOverDd: median(rows.verifyDigest.map((v, i) => v / rows.dd[i])),
    verifyOverDd: median(rows.verify.map((v, i) => v / rows.dd[i])),
  },
  ddGBps: st.size / dd / 1e9,
  digestMatchesRamImage: digestOk,
};
fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(root, `bench/results/verify-${GIB}g.json`), JSON.stringify(result, null, 2) + '\n');
console.log(
  `verify --digest ${result.median.verifyDigest.toFixed(2)} s, verify ${result.median.verify.toFixed(2)} s, dd iflag=direct ${dd.toFixed(2)} s ` +
    `(${result.ddGBps.toFixed(2)} GB/s): median per-run ratio verify --digest / dd = ${result.ratio.verifyDigestOverDd.toFixed(2)}×, verify / dd = ${result.ratio.verifyOverDd.toFixed(2)}×; digest ${digestOk ? 'matches' : 'DOES NOT match'} the RAM image`,
);
