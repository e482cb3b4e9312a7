// Scale bench (#17): a QEMU guest of MRAM_SCALE_GIB (default 256) GiB with a few MiB touched
// (`-device loader` blobs of random bytes), saved by QEMU as mapped-ram
// and as a plain stream; then every mram command on it, timed whole-process with its peak RSS.
// Writes bench/results/scale.json (rows in the limits shape: command, work, mram_s, limit, limit_s,
// ratio, target, met, rss_mib). Needs ~1 GB of disk for the stream (256 GiB of zero pages) and the
// sparse files; MRAM_BENCH_DIR picks the file system (default: os.tmpdir()).
// Guest RAM (MRAM_SCALE_BACKEND): `file` (default), a sparse file on that file system mapped privately,
// whose never-written pages QEMU's zero-page scan reads as clean, reclaimable page cache; `ram`,
// memory-backend-ram,reserve=off, needs a kernel that maps untouched anonymous memory read to the zero
// page (the one here since 2026-12-02 allocates it: the 256 GiB guest was OOM-killed at 23.5 GB).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configure, qemuVersion, startGuest } from './lib/qemu.js';
import { plainNodeEnvironment, run } from './lib/measure.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const GIB = Number(process.env.MRAM_SCALE_GIB ?? 256);
const BLOB_MIB = 1;
const BACKEND = process.env.MRAM_SCALE_BACKEND ?? 'file';
const log = (...a) => console.error('[scale]', ...a);
const environment = plainNodeEnvironment();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dir = fs.mkdtempSync(path.join(process.env.MRAM_BENCH_DIR ?? os.tmpdir(), 'mram-scale-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const mram = path.join(root, 'bin/mram.js');
const f = (name) => path.join(dir, name);

/** Guest-physical addresses of the touched MiBs: low RAM, and spread over RAM above 4 GiB (q35 remaps it there). */
function blobAddresses() {
  const high = 4 * 2 ** 30;
  const top = high + (GIB - 2) * 2 ** 30;
  return [0x1000_0000, high + 2 ** 30, high + Math.floor((top - high) / 2 / 2 ** 20) * 2 ** 20, top - 16 * 2 ** 20];
}

async function waitMigration(qmp) {
  for (;;) {
    const info = await qmp.execute('query-migrate');
    if (info.status === 'completed') return info;
    if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`QEMU save ${info.status}: ${info['error-desc'] ?? ''}`);
    await sleep(50);
  }
}

/** Two fresh paused guests with the same blobs (QEMU refuses a second save): both files hold the same RAM. */
async function qemuSaves() {
  const loaders = blobAddresses().map((addr, i) => {
    const blob = f(`blob${i}`);
    fs.writeFileSync(blob, crypto.randomBytes(BLOB_MIB << 20));
    return ['-device', `loader,file=${blob},addr=${addr}`];
  });
  const saved = {};
  for (const [name, mappedRam] of [['guest.mr', true], ['guest.stream', false]]) {
    const ram = f('ram');
    fs.rmSync(ram, { force: true });
    fs.writeFileSync(ram, '');
    fs.truncateSync(ram, GIB * 2 ** 30);
    const memoryObject = BACKEND === 'ram' ? `memory-backend-ram,id=mem,size=${GIB}G,reserve=off` : `memory-backend-file,id=mem,size=${GIB}G,mem-path=${ram},share=off,reserve=off`;
    const g = await startGuest({ memMiB: GIB * 1024, memoryObject, extraArgs: loaders.flat() });
    try {
      await configure(g.qmp, { mappedRam });
      const t0 = performance.now();
      await g.qmp.execute('migrate', { uri: `file:${f(name)}` });
      await waitMigration(g.qmp);
      saved[name] = (performance.now() - t0) / 1000;
      log(`QEMU saved ${name} in ${saved[name].toFixed(1)} s`);
    } finally {
      await g.kill();
      fs.rmSync(ram, { force: true });
    }
  }
  return saved;
}

/** `openssl dgst -sha256` of a cached 1 GiB file, scaled to the guest: the compute limit of a full digest. */
function opensslSeconds(bytes) {
  const probe = f('probe.raw');
  fs.writeFileSync(probe, Buffer.alloc(1 << 30));
  spawnSync('cat', [probe], { stdio: ['ignore', 'ignore', 'ignore'] });
  const t0 = performance.now();
  spawnSync('openssl', ['dgst', '-sha256', probe], { stdio: 'ignore' });
  const s = (performance.now() - t0) / 1000;
  fs.rmSync(probe);
  return (s * bytes) / 2 ** 30;
}

const mr = f('guest.mr');
const stream = f('guest.stream');
const saved = await qemuSaves();
const st = (p) => fs.statSync(p);
log(`mapped-ram ${st(mr).size} B apparent, ${st(mr).blocks * 512} B allocated; stream ${st(stream).size} B`);
const guestBytes = GIB * 2 ** 30;
const work = `${GIB} GiB guest, ${4 * BLOB_MIB} MiB touched`;
// Slow rows last (SHA-256 over the whole guest; the stream's per-record walk): the JSON is rewritten
// after every command, so an interrupted run keeps the rows it finished.
const commands = [
  ['inspect', ['inspect', mr], { target: 'RSS < 200 MiB' }],
  ['verify', ['verify', mr], { limit: 'target: 2 s', limit_s: 2, target: 1 }],
  ['verify --content-digest', ['verify', '--content-digest', mr], { limit: 'target: 1 s', limit_s: 1, target: 1 }],
  ['convert mapped-ram → stream', ['convert', '--to', 'stream', mr, f('conv.stream')], { target: 'RSS < 200 MiB' }],
  ['convert stream → mapped-ram', ['convert', '--to', 'mapped-ram', stream, f('conv.mr')], { target: 'RSS < 200 MiB' }],
  ['extract --all', ['extract', '--all', f('extract'), mr], { target: 'RSS < 200 MiB' }],
  ['verify --digest', ['verify', '--digest', mr], { limit: 'openssl dgst -sha256 of the raw image (1 GiB cached, scaled; mean of a probe before and after)', limit_s: null, target: 0.8, probe: true }],
  ['verify --content-digest (stream)', ['verify', '--content-digest', stream], { target: 'RSS < 200 MiB' }],
];
const rows = [];
const outputs = {};
const result = {
  machine: `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}, QEMU ${qemuVersion()}`,
  loadavg: os.loadavg(),
  environment,
  guestGiB: GIB,
  qemuSaveSeconds: saved,
  files: { mappedRam: { size: st(mr).size, allocated: st(mr).blocks * 512 }, stream: { size: st(stream).size } },
  contentDigestSameInBothFormats: null,
  rows,
};
const save = () => {
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench/results/scale.json'), JSON.stringify(result, null, 2) + '\n');
};
for (const [command, args, t] of commands) {
  // The digest's limit is probed right before and after it: a probe minutes away met another load.
  const before = t.probe ? opensslSeconds(guestBytes) : 0;
  const r = await run(process.execPath, [mram, ...args, '-q'], { okCodes: [0, 3] });
  if (t.probe) t.limit_s = (before + opensslSeconds(guestBytes)) / 2;
  outputs[command] = r.stdout;
  const ratio = t.limit_s ? t.limit_s / r.secs : null;
  const met = r.rssMiB < 200 && (ratio === null || ratio >= t.target);
  rows.push({ command, work, work_bytes: guestBytes, mram_s: r.secs, limit: t.limit ?? null, limit_s: t.limit_s ?? null, ratio, target: typeof t.target === 'number' ? `≥ ${t.target}× (and RSS < 200 MiB)` : t.target, met, rss_mib: r.rssMiB, scale: true });
  log(`${command}: ${r.secs.toFixed(2)} s, ${r.rssMiB.toFixed(0)} MiB RSS${ratio ? `, ${ratio.toFixed(2)}× its limit` : ''}`);
  save();
}
const content = (s) => /^content (\S+)/m.exec(s)?.[1] ?? null;
result.contentDigestSameInBothFormats = content(outputs['verify --content-digest']) === content(outputs['verify --content-digest (stream)']);
save();
log(`content digest equal for mapped-ram and stream: ${result.contentDigestSameInBothFormats}; wrote bench/results/scale.json`);
