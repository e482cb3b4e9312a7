// `mram convert` onto filesystems that refuse O_DIRECT (ramfs) or run out of space (a small
// tmpfs). Needs root to mount them: skipped locally without it, a failure when CI is set.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { verifyFile } from '../../src/verify/verify.js';
import { runBin, runCli } from '../support/cli.js';
import { getFixture } from '../support/fixtures.js';
import { describeMounts, mountTemp, type TempMount } from '../support/mounts.js';
import { buildCli, firstDifferentPage } from './support.js';

/** Guest RAM of the `mem` block of a migration file, through the reader. */
async function guestRam(file: string): Promise<Uint8Array> {
  const f = await MigrationFile.open(file);
  try {
    const mem = f.block('mem');
    return await mem.read(0, mem.usedLength);
  } finally {
    await f.close();
  }
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describeMounts('mram convert --direct-io on a filesystem that refuses O_DIRECT (ramfs)', () => {
  const mounts: TempMount[] = [];
  let ramfs: TempMount;
  beforeAll(() => {
    buildCli();
    ramfs = mountTemp('ramfs');
    mounts.push(ramfs);
  });
  afterAll(() => mounts.forEach((m) => m.unmount()));

  /** A fresh directory on the ramfs, so that each test lists only what it produced. */
  const dirOnRamfs = (name: string) => {
    const d = path.join(ramfs.dir, name);
    fs.mkdirSync(d);
    return d;
  };

  it('the mount really refuses O_DIRECT (EINVAL on open)', () => {
    expect(() => fs.openSync(path.join(ramfs.dir, 'probe'), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_DIRECT)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    fs.rmSync(path.join(ramfs.dir, 'probe'), { force: true });
  });

  it('auto: falls back to buffered page writes with one warning; the output verifies and holds the input\'s RAM', async () => {
    const fx = await getFixture('stream-32m');
    const dir = dirOnRamfs('auto');
    const out = path.join(dir, 'out.mram');
    const r = await runCli(['convert', fx.file, out, '--direct-io', 'auto']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      `mram convert: warning: the filesystem of ${out} refuses O_DIRECT (EINVAL on open); writing pages through the page cache (buffered)\n`,
    );
    expect(fs.readdirSync(dir)).toEqual(['out.mram']);
    const report = await verifyFile(out);
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(report.exitCode).toBe(0);
    expect(report.format).toBe('mapped-ram');
    expect(firstDifferentPage(await guestRam(out), fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('on: fails with exit 64 and one line naming OUT; neither OUT nor the temporary file is left', async () => {
    const fx = await getFixture('stream-32m');
    const dir = dirOnRamfs('on');
    const out = path.join(dir, 'out.mram');
    // The installed entry point: the exit code and stderr are those of the real process.
    const r = runBin(['convert', fx.file, out, '--direct-io', 'on']);
    expect(r.stderr).toBe(`mram convert: --direct-io on: the filesystem of ${out} refuses O_DIRECT (EINVAL on open)\n`);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('off: never tries O_DIRECT, so no warning; the output verifies and holds the input\'s RAM', async () => {
    const fx = await getFixture('stream-32m');
    const dir = dirOnRamfs('off');
    const out = path.join(dir, 'out.mram');
    const r = await runCli(['convert', fx.file, out, '--direct-io', 'off']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(fs.readdirSync(dir)).toEqual(['out.mram']);
    expect((await verifyFile(out)).exitCode).toBe(0);
    expect(firstDifferentPage(await guestRam(out), fs.readFileSync(fx.ramImage))).toBe(-1);
  });
});

describeMounts('mram convert onto a full filesystem (small tmpfs)', () => {
  // The committed 32 MiB fixtures hold ~1.1 MiB of non-zero pages, so either output direction
  // needs more than this.
  const TMPFS_BYTES = 512 << 10;
  const mounts: TempMount[] = [];
  let tmpfs: TempMount;
  beforeAll(() => {
    buildCli();
    tmpfs = mountTemp('tmpfs', `size=${TMPFS_BYTES},mode=0755`);
    mounts.push(tmpfs);
  });
  afterAll(() => mounts.forEach((m) => m.unmount()));

  /** All of the tmpfs is free again: nothing left, not even an unlinked file held open. */
  const expectTmpfsEmpty = () => {
    expect(fs.readdirSync(tmpfs.dir)).toEqual([]);
    const s = fs.statfsSync(tmpfs.dir);
    expect(s.bfree).toBe(s.blocks);
  };

  it('stream → mapped-ram: ENOSPC in one line naming OUT, exit 1, no stack trace, nothing left behind', async () => {
    const fx = await getFixture('stream-32m');
    expect(fx.meta.ramNonZeroPages * 4096).toBeGreaterThan(TMPFS_BYTES);
    const out = path.join(tmpfs.dir, 'out.mram');
    // In-process, so that a descriptor left open on the removed temporary file would show in statfs.
    const r = await runCli(['convert', fx.file, out]);
    expect(r.stderr).toMatch(new RegExp(`^mram convert: writing ${escapeRe(out)}: ENOSPC: no space left on device, [a-z]+\\n$`));
    expect(r.code).toBe(1);
    expectTmpfsEmpty();
  });

  it('mapped-ram → stream (--to stream to a file): ENOSPC in one line naming OUT, exit 1, no stack trace, nothing left behind', async () => {
    const fx = await getFixture('mr-32m');
    expect(fx.meta.ramNonZeroPages * 4096).toBeGreaterThan(TMPFS_BYTES);
    const out = path.join(tmpfs.dir, 'out.mig');
    const r = runBin(['convert', fx.file, out, '--to', 'stream']);
    expect(r.stderr).toMatch(new RegExp(`^mram convert: writing ${escapeRe(out)}: ENOSPC: no space left on device, [a-z]+\\n$`));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expectTmpfsEmpty();
  });

  it('the same conversions succeed once there is room (the failures above were about space only)', async () => {
    const fx = await getFixture('mr-32m');
    const big = mountTemp('tmpfs', 'size=8m');
    mounts.push(big);
    const out = path.join(big.dir, 'out.mig');
    const r = await runCli(['convert', fx.file, out, '--to', 'stream']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.statSync(out).size).toBeGreaterThan(TMPFS_BYTES);
    const mr = path.join(big.dir, 'out.mram');
    expect((await runCli(['convert', out, mr])).code).toBe(0);
    expect(fs.statSync(mr).blocks * 512).toBeGreaterThan(TMPFS_BYTES);
  });
});
