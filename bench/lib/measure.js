// Whole-process measurements for the end-to-end benchmark: wall time and peak RSS of a child
// process, page-cache residency of a file (fincore), Cached from /proc/meminfo, per-file eviction.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

const GNU_TIME = fs.existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-f', '%M', 'true'], { encoding: 'utf8' }).status === 0 ? '/usr/bin/time' : null;

/**
 * Runs `cmd args` to completion. Returns wall seconds (spawn → exit, so process start-up is
 * included), the child's peak RSS in MiB (GNU time's %M, i.e. wait4 rusage; else VmHWM polled
 * from /proc every 10 ms), exit code, stdout and stderr.
 */
let runs = 0;
export async function run(cmd, args, { okCodes = [0], stdout = 'pipe' } = {}) {
  // One file per child: runs may overlap (a writer and a concurrent reader).
  const tfile = GNU_TIME ? `${os.tmpdir()}/mram-e2e-time-${process.pid}-${runs++}` : null;
  const [c, a] = GNU_TIME ? [GNU_TIME, ['-f', '%M', '-o', tfile, cmd, ...args]] : [cmd, args];
  const t0 = performance.now();
  const p = spawn(c, a, { stdio: ['ignore', stdout, 'pipe'] });
  let out = '';
  let err = '';
  p.stdout?.setEncoding('utf8').on('data', (d) => (out += d));
  p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  let hwmKiB = 0;
  const poll = GNU_TIME
    ? null
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'));
          if (m) hwmKiB = Math.max(hwmKiB, Number(m[1]));
        } catch {
          /* exited */
        }
      }, 10);
  const code = await new Promise((resolve, reject) => {
    p.once('error', reject);
    p.once('close', (c) => resolve(c));
  });
  const secs = (performance.now() - t0) / 1000;
  if (poll) clearInterval(poll);
  if (tfile) {
    const t = fs.readFileSync(tfile, 'utf8').trim().split('\n');
    hwmKiB = Number(t[t.length - 1]);
    fs.rmSync(tfile, { force: true });
  }
  if (!okCodes.includes(code)) throw new Error(`${cmd} ${args.join(' ')} exited ${code}\n${err}`);
  return { secs, rssMiB: hwmKiB / 1024, code, stdout: out, stderr: err };
}

/** Bytes of `file` resident in the page cache (util-linux fincore). */
export function fincore(file) {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--raw', '-o', 'RES', file], { encoding: 'utf8' });
  if (r.status !== 0) return NaN;
  return Number(r.stdout.trim());
}

/** `Cached:` of /proc/meminfo, bytes. */
export function cachedBytes() {
  const m = /^Cached:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return Number(m[1]) * 1024;
}

/**
 * Drops one file from the page cache: fdatasync + posix_fadvise(DONTNEED) (dd oflag=nocache
 * conv=notrunc,fdatasync count=0), then DONTNEED again for pages that were clean already. Without
 * the sync, dirty pages (a buffered writer's output still in writeback) would stay cached.
 */
export function evict(file) {
  spawnSync('dd', [`of=${file}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none']);
  spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** Reads a file once so it is resident (input of a write benchmark comes from memory). */
export function warm(file) {
  spawnSync('dd', [`if=${file}`, 'of=/dev/null', 'bs=4M', 'status=none']);
}

export const allocated = (file) => fs.statSync(file).blocks * 512;

export function stats(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

export function machine(qemu, dir) {
  const fsType = spawnSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', dir], { encoding: 'utf8' }).stdout.trim().replace(/\s+/g, ' ');
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    ramGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    filesystem: fsType,
    node: process.version,
    qemu,
    dd: spawnSync('dd', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0],
  };
}

// Variables some machines set that make every Node process do start-up work mram never needs:
// NODE_EXTRA_CA_CERTS has Node 20 parse that CA bundle before any JavaScript runs (mram opens no TLS
// connection). This machine sets it for its own network tools; a libvirt host does not.
const NODE_START_EXTRAS = ['NODE_EXTRA_CA_CERTS'];

/** Median wall seconds of `node -e 0` over `n` runs, in the current environment. */
function nodeStart(n = 7) {
  return stats(Array.from({ length: n }, () => timedSync(process.execPath, ['-e', '0']).s)).median;
}

/**
 * Removes NODE_START_EXTRAS from this process's environment, so every command a bench spawns starts
 * as on a host without them. Returns what was removed and `node -e 0` with and without, for the JSON.
 */
export function plainNodeEnvironment() {
  const removed = NODE_START_EXTRAS.filter((k) => process.env[k] !== undefined);
  const before = removed.length ? nodeStart() : null;
  for (const k of removed) delete process.env[k];
  return { removed, node_start_s: nodeStart(), node_start_with_removed_s: before };
}

/** Runs `cmd args` synchronously; wall seconds and stdout; throws on a non-zero exit. */
export function timedSync(cmd, args) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { s, stdout: r.stdout };
}
