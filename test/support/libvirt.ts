// A private libvirtd per test suite: libvirt 12 (QEMU 11) in the trixie chroot, libvirt 11 (QEMU 10)
// on the host. Each runs in its own mount namespace with /run/libvirt, /var/lib/libvirt, the
// persistent domain definitions (/etc/libvirt/qemu) and qemu.conf bind-mounted from a temporary directory, so nothing of the host's libvirt is touched;
// virsh talks to it through the socket in that directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './fixtures.js';

export type LibvirtGeneration = 'libvirt12' | 'libvirt11';

const TRIXIE_ROOT = process.env.MRAM_TRIXIE_ROOT ?? path.join(REPO_ROOT, '.cache/trixie');
const TRIXIE = path.join(REPO_ROOT, 'scripts/trixie');

/** The qemu.conf of every test daemon (root-run QEMU, no confinement, no virtlogd, no namespaces). */
const QEMU_CONF = `user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"
namespaces = [ ]
`;

// Runs inside the private mount namespace: binds the daemon's state directories, then becomes libvirtd.
const START = `b=$1
for d in run lib cache log defs; do mkdir -p "$b/$d"; done
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt/qemu
for m in run:/run/libvirt lib:/var/lib/libvirt cache:/var/cache/libvirt log:/var/log/libvirt defs:/etc/libvirt/qemu; do
  mount --bind "$b/\${m%%:*}" "\${m#*:}" || exit 1
done
touch /etc/libvirt/qemu.conf
mount --bind "$b/qemu.conf" /etc/libvirt/qemu.conf || exit 1
exec /usr/sbin/libvirtd --pid-file "$b/libvirtd.pid"`;

/** Why a generation cannot run here, or null when it can. */
export function libvirtMissing(gen: LibvirtGeneration): string | null {
  if (gen === 'libvirt12') {
    return fs.existsSync(path.join(TRIXIE_ROOT, 'usr/sbin/libvirtd')) ? null : `libvirt 12 needs the trixie chroot at ${TRIXIE_ROOT} (scripts/install-qemu11.sh)`;
  }
  return fs.existsSync('/usr/sbin/libvirtd') && spawnSync('virsh', ['--version']).status === 0 ? null : 'libvirt 11 needs libvirtd and virsh on the host (scripts/install-libvirt.sh)';
}

export interface VirshResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Libvirtd {
  private constructor(
    readonly generation: LibvirtGeneration,
    readonly dir: string,
    private readonly daemon: ChildProcess,
  ) {}

  /** Starts a daemon and waits for its socket. */
  static async start(gen: LibvirtGeneration): Promise<Libvirtd> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mram-${gen}-`));
    fs.writeFileSync(path.join(dir, 'qemu.conf'), QEMU_CONF);
    const cmd = gen === 'libvirt12' ? [TRIXIE, '/bin/sh', '-c', START, 'start', dir] : ['unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', START, 'start', dir];
    const log = fs.openSync(path.join(dir, 'libvirtd.log'), 'w');
    const daemon = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', log, log], env: { ...process.env, MRAM_TRIXIE_ROOT: TRIXIE_ROOT } });
    fs.closeSync(log);
    const d = new Libvirtd(gen, dir, daemon);
    const sock = path.join(dir, 'run/libvirt-sock');
    for (let i = 0; i < 300; i++) {
      if (daemon.exitCode !== null) break;
      if (fs.existsSync(sock) && d.virsh(['version']).code === 0) return d;
      await new Promise((r) => setTimeout(r, 100));
    }
    await d.stop();
    throw new Error(`${gen}: libvirtd did not come up: ${fs.readFileSync(path.join(dir, 'libvirtd.log'), 'utf8').slice(-2000)}`);
  }

  /** virsh of the same generation, connected to this daemon. */
  virsh(args: string[]): VirshResult {
    const uri = `qemu:///system?socket=${path.join(this.dir, 'run/libvirt-sock')}`;
    const cmd = this.generation === 'libvirt12' ? [TRIXIE, 'virsh', '-c', uri, ...args] : ['virsh', '-c', uri, ...args];
    const r = spawnSync(cmd[0]!, cmd.slice(1), { env: { ...process.env, MRAM_TRIXIE_ROOT: TRIXIE_ROOT }, timeout: 120_000 });
    return { code: r.status ?? -1, stdout: r.stdout?.toString('utf8') ?? '', stderr: r.stderr?.toString('utf8') ?? String(r.error ?? '') };
  }

  /** virsh that must succeed. */
  run(args: string[]): string {
    const r = this.virsh(args);
    if (r.code !== 0) throw new Error(`${this.generation}: virsh ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** The domain's state as virsh names it ("running", "paused", "shut off"), or null when absent. */
  state(domain: string): string | null {
    const r = this.virsh(['domstate', domain]);
    return r.code === 0 ? r.stdout.trim() : null;
  }

  /** Destroys every domain, stops the daemon, removes its directory. */
  async stop(): Promise<void> {
    const list = this.virsh(['list', '--name']);
    for (const name of list.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) this.virsh(['destroy', name]);
    if (this.daemon.exitCode === null) {
      const exited = new Promise((r) => this.daemon.once('exit', r));
      this.daemon.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (this.daemon.exitCode === null) this.daemon.kill('SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A small domain both QEMU generations run: 64 MiB, no disk, TCG, a machine type 10.0 and 11 both know. */
export function smallDomainXml(name: string): string {
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc-q35-10.0'>hvm</type></os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
