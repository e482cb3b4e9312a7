// Minimal QEMU driver for the end-to-end benchmark: a QMP client, a paused guest whose RAM is a
// memory-backend-file (share=on, normally on /dev/shm), and timed save / load over file: URIs.
// Plain JS on purpose (no vite-node): the bench runs as `node bench/e2e.js`.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const QEMU_BIN = process.env.MRAM_QEMU ?? 'qemu-system-x86_64';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function qemuVersion() {
  const r = spawnSync(QEMU_BIN, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? (/version (\S+)/.exec(r.stdout)?.[1] ?? null) : null;
}

const haveSetpriv = spawnSync('setpriv', ['--help'], { encoding: 'utf8' }).stdout?.includes('pdeathsig') ?? false;
const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

async function qmpConnect(sock, proc, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`QEMU exited during startup (code ${proc.exitCode})`);
    try {
      const s = await new Promise((resolve, reject) => {
        const c = net.connect(sock, () => resolve(c));
        c.once('error', reject);
      });
      let buf = '';
      const waiters = [];
      s.setEncoding('utf8');
      s.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.trim()) continue;
          const msg = JSON.parse(line);
          if ('return' in msg || 'error' in msg) waiters.shift()?.(msg);
        }
      });
      s.on('close', () => {
        for (const w of waiters.splice(0)) w({ error: { desc: 'QMP connection closed' } });
      });
      const execute = (cmd, args) =>
        new Promise((resolve, reject) => {
          waiters.push((m) => (m.error ? reject(new Error(`${cmd}: ${m.error.desc}`)) : resolve(m.return)));
          s.write(JSON.stringify(args ? { execute: cmd, arguments: args } : { execute: cmd }) + '\n');
        });
      await execute('qmp_capabilities');
      return { execute, close: () => s.destroy() };
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(30);
    }
  }
}

/** Paused q35/TCG guest, RAM = memory-backend-file at `ramPath` (created by QEMU if missing). */
export async function startGuest({ memMiB, ramPath, incoming = false, extraArgs = [], command = [QEMU_BIN], memoryObject = null }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-e2e-qmp-'));
  const sock = path.join(dir, 'qmp.sock');
  const args = [
    '-machine', 'q35,memory-backend=mem', '-accel', 'tcg', '-m', `${memMiB}M`,
    // memoryObject: another backend (e.g. memory-backend-ram,reserve=off for a huge mostly empty guest).
    '-object', memoryObject ?? `memory-backend-file,id=mem,size=${memMiB}M,mem-path=${ramPath},share=on`,
    '-nodefaults', '-display', 'none', '-serial', 'none', '-monitor', 'none', '-S',
    '-qmp', `unix:${sock},server=on,wait=off`,
  ];
  if (incoming) args.push('-incoming', 'defer');
  args.push(...extraArgs);
  const [cmd, argv] = haveSetpriv ? ['setpriv', ['--pdeathsig', 'KILL', ...command, ...args]] : [command[0], [...command.slice(1), ...args]];
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => proc.once('exit', r));
  exited.then(() => live.delete(proc));
  const kill = async () => {
    qmp?.close();
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  let qmp;
  try {
    qmp = await qmpConnect(sock, proc);
  } catch (e) {
    await kill();
    throw new Error(`QEMU failed to start: ${e.message}\n${stderr}`);
  }
  return { proc, qmp, kill, stderr: () => stderr };
}

export async function configure(qmp, { mappedRam = true, multifd = 0, directIo = false }) {
  await qmp.execute('migrate-set-capabilities', {
    capabilities: [
      { capability: 'mapped-ram', state: mappedRam },
      { capability: 'multifd', state: multifd > 0 },
    ],
  });
  const params = { 'max-bandwidth': 2 ** 40 }; // no rate limit: the fastest QEMU can do
  if (multifd > 0) params['multifd-channels'] = multifd;
  if (directIo) params['direct-io'] = true;
  await qmp.execute('migrate-set-parameters', params);
}

/**
 * Saves the guest on `ramPath` to `out` (file: URI). Timed from `migrate` to `completed` (the
 * guest is already running, as it would be in production; QEMU start-up is not counted).
 */
export async function qemuSave({ ramPath, memMiB, out, ...cfg }) {
  const g = await startGuest({ memMiB, ramPath });
  try {
    await configure(g.qmp, cfg);
    const t0 = performance.now();
    await g.qmp.execute('migrate', { uri: `file:${out}` });
    for (;;) {
      const info = await g.qmp.execute('query-migrate');
      if (info.status === 'completed') return { secs: (performance.now() - t0) / 1000, qemuTotalMs: info['total-time'], info };
      if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`QEMU save ${info.status}: ${info['error-desc'] ?? ''}\n${g.stderr()}`);
      await sleep(5);
    }
  } finally {
    await g.kill();
  }
}

/** Loads `file` into a fresh guest whose RAM is `ramPath`; timed from migrate-incoming until the VM left inmigrate. */
export async function qemuLoad({ ramPath, memMiB, file, ...cfg }) {
  const g = await startGuest({ memMiB, ramPath, incoming: true });
  try {
    await configure(g.qmp, cfg);
    const t0 = performance.now();
    await g.qmp.execute('migrate-incoming', { uri: `file:${file}` });
    for (;;) {
      if (g.proc.exitCode !== null) throw new Error(`destination QEMU died during load:\n${g.stderr()}`);
      const info = await g.qmp.execute('query-migrate');
      if (info.status === 'failed') throw new Error(`QEMU load failed: ${info['error-desc'] ?? ''}\n${g.stderr()}`);
      if (info.status === 'completed') {
        const st = await g.qmp.execute('query-status');
        if (st.status !== 'inmigrate') return { secs: (performance.now() - t0) / 1000, runState: st.status };
      }
      await sleep(5);
    }
  } finally {
    await g.kill();
  }
}
