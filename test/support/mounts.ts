// Throwaway filesystems for tests that need a particular one: ramfs (refuses O_DIRECT), a small
// tmpfs (runs out of space). Mounting needs root; like describeQemu, a suite that cannot mount
// is skipped locally (with a message) and fails when CI is set.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const vt = process.env.VITEST ? await import('vitest') : undefined;

export const MOUNT_MISSING_MESSAGE = 'filesystem tests mount ramfs/tmpfs and need root (CAP_SYS_ADMIN) and mount(8)';

let cachedCanMount: string | null | undefined;

/** null when this process can mount (probed once with a ramfs), else why not. */
export function whyCannotMount(): string | null {
  if (cachedCanMount !== undefined) return cachedCanMount;
  if (process.getuid?.() !== 0) {
    cachedCanMount = `not root (uid ${process.getuid?.() ?? '?'})`;
    return cachedCanMount;
  }
  let probe: string | null = null;
  try {
    probe = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-mount-probe-'));
    const r = spawnSync('mount', ['-t', 'ramfs', 'none', probe], { encoding: 'utf8' });
    if (r.status !== 0) cachedCanMount = `mount -t ramfs failed: ${(r.stderr || r.error?.message || '').trim()}`;
    else {
      spawnSync('umount', [probe]);
      cachedCanMount = null;
    }
  } finally {
    if (probe) fs.rmSync(probe, { recursive: true, force: true });
  }
  return cachedCanMount;
}

/**
 * `describe` for suites that mount filesystems: skipped (message printed) when this process
 * cannot mount; when CI is set it fails instead — a CI run that skips them is not a pass.
 */
export function describeMounts(name: string, fn: () => void): void {
  if (!vt) throw new Error('describeMounts is only usable inside vitest');
  const { describe, it } = vt;
  const why = whyCannotMount();
  if (why && process.env.CI) {
    describe(name, () => {
      it('requires mounting (CI is set: skipping is a failure)', () => {
        throw new Error(`${MOUNT_MISSING_MESSAGE}: ${why}; CI is set, so "${name}" must not be skipped`);
      });
    });
    return;
  }
  if (why) console.warn(`[mram] SKIPPING "${name}": ${MOUNT_MISSING_MESSAGE}: ${why}`);
  describe.skipIf(why !== null)(name, fn);
}

export interface TempMount {
  /** The mount point (an empty directory of the new filesystem). */
  dir: string;
  /** Unmounts and removes the mount point; idempotent, never throws (lazy unmount if busy). */
  unmount(): void;
}

// Mounts still up when the worker exits (a crash, a timeout that skipped afterAll) go too.
const live = new Set<TempMount>();
let exitHookInstalled = false;

/** Mounts a fresh `type` filesystem (`ramfs`, `tmpfs`...) on a new temp directory. */
export function mountTemp(type: string, options?: string): TempMount {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => [...live].forEach((m) => m.unmount()));
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mram-${type}-`));
  const args = ['-t', type, ...(options ? ['-o', options] : []), 'none', dir];
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`mount ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
  }
  let mounted = true;
  const m: TempMount = {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      live.delete(m);
      if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(m);
  return m;
}
