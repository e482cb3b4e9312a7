// vitest globalSetup: every test run gets its own TMPDIR (inherited by the test workers and the
// processes they start), and the run fails if anything is left in it — suites clean up after themselves.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'mram-test-run-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = base;
  return () => {
    const left = fs.readdirSync(base);
    fs.rmSync(base, { recursive: true, force: true });
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    if (left.length) throw new Error(`the tests left ${left.length} entr${left.length === 1 ? 'y' : 'ies'} in TMPDIR: ${left.sort().join(', ')}`);
  };
}
