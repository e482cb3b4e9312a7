// Data loss behind an offset prefix: the allocated bytes before the stream must not pass for page data.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { verifyFile } from '../../src/verify/verify.js';
import { buildCli, CLI } from '../convert/support.js';
import { getFixture } from '../support/fixtures.js';
import { tempDir } from './support.js';

const dir = tempDir('mram-prefix-holes-');
const PREFIX = 2 << 20;
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Punches holes (fallocate --punch-hole) into the slots of the first `n` present pages of `block`. */
async function punchPresentPages(file: string, block: string, n: number): Promise<number> {
  const f = await MigrationFile.open(file, { offset: PREFIX });
  let punched = 0;
  try {
    const b = f.block(block);
    for (const run of b.presentRuns()) {
      for (let p = run.start; p < run.start + run.count && punched < n; p++, punched++) {
        const r = spawnSync('fallocate', ['--punch-hole', '-o', String(b.pageOffset(p)), '-l', String(b.pageSize), file]);
        expect(r.status).toBe(0);
      }
    }
  } finally {
    await f.close();
  }
  return punched;
}

describe('verify: holes under set bits behind an allocated offset prefix', () => {
  let clean = '';
  beforeAll(async () => {
    buildCli();
    // A real QEMU save re-laid out at offset=2 MiB behind 2 MiB of allocated bytes (as a tool's header would be).
    clean = path.join(dir, 'prefixed.mram');
    fs.writeFileSync(clean, Buffer.alloc(PREFIX, 0x58));
    const r = spawnSync(process.execPath, [CLI, 'convert', (await getFixture('mr-32m')).file, clean, '--to', 'mapped-ram', '--offset', '2M', '--force']);
    expect(r.stderr.toString()).toBe('');
  }, 120_000);

  it('the prefixed file is clean, and 50 punched pages of mem give E_HOLE_UNDER_SET_BIT', async () => {
    expect((await verifyFile(clean, { offset: PREFIX })).exitCode).toBe(0);
    const damaged = path.join(dir, 'punched.mram');
    // cp keeps the holes (fs.copyFileSync may allocate them, hiding what the test looks for).
    expect(spawnSync('cp', ['--sparse=always', clean, damaged]).status).toBe(0);
    expect(await punchPresentPages(damaged, 'mem', 50)).toBe(50);
    const r = await verifyFile(damaged, { offset: PREFIX });
    expect(r.exitCode).toBe(2);
    expect(r.errors.map((f) => f.code)).toContain('E_HOLE_UNDER_SET_BIT');
  });
});
