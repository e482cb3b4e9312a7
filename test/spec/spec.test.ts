// spec/ must say what the code does: the verify code table is the one in src/verify/codes.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECK_CODES } from '../../src/verify/codes.js';
import { REPO_ROOT } from '../support/fixtures.js';

describe('spec/format.md', () => {
  const spec = readFileSync(path.join(REPO_ROOT, 'spec/format.md'), 'utf8');

  it('lists every verify check code with its severity and meaning, and no other', () => {
    const table = spec.slice(spec.indexOf('<!-- codes:begin -->'), spec.indexOf('<!-- codes:end -->'));
    const rows = [...table.matchAll(/^\| `(\w+)` \| (\w+) \| (.*) \|$/gm)].map((m) => [m[1], m[2], m[3]!.replace(/\\\|/g, '|')]);
    expect(rows).toEqual(Object.entries(CHECK_CODES).map(([code, c]) => [code, c.severity, c.description]));
  });
});
