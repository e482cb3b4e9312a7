// Outputs hold guest memory: created 0600 like QEMU's own migration files, whatever the umask.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getFixture } from '../support/fixtures.js';
import { runCli } from '../support/cli.js';

describe('output permissions', () => {
  it('convert and extract create files readable by the owner only', async () => {
    const fx = await getFixture('stream-32m');
    const dir = mkdtempSync(path.join(tmpdir(), 'mram-perm-'));
    try {
      const out = path.join(dir, 'out.mram');
      const c = await runCli(['convert', fx.file, out]);
      expect(c.code, c.stderr).toBe(0);
      expect(statSync(out).mode & 0o777).toBe(0o600);
      const e = await runCli(['extract', out, '--block', 'mem', '-o', path.join(dir, 'mem.ram')]);
      expect(e.code, e.stderr).toBe(0);
      expect(statSync(path.join(dir, 'mem.ram')).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
