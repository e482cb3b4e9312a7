// compare and map on blocks that x-ignore-shared leaves out, as QEMU writes them (the shared `mem`).
import { expect, it } from 'vitest';
import { getFixture } from '../support/fixtures.js';
import { runCli } from '../support/cli.js';
import { describeQemu, describeQemuOn } from '../support/qemu.js';

async function checks(xisName: string, plainName: string): Promise<void> {
  const xis = await getFixture(xisName);
  const plain = await getFixture(plainName);
  const same = await runCli(['compare', '--json', xis.file, xis.file]);
  expect(same.code, same.stderr).toBe(0);
  const doc = JSON.parse(same.stdout);
  expect(doc.blocks.find((b: { id: string }) => b.id === 'mem')).toMatchObject({ ignored: 'both', equal: 0, differing: 0 });
  expect(doc.bytesRead.a).toBeLessThan(1 << 20);
  // The RAM of an ignored block is in no file: against a file that holds it, the block differs.
  const other = await runCli(['compare', xis.file, plain.file]);
  expect(other.code).toBe(1);
  expect(other.stdout).toContain('block "mem" is ignored (x-ignore-shared) in A only');
  const svg = await runCli(['map', xis.file, '-o', '-']);
  expect(svg.code, svg.stderr).toBe(0);
  expect(svg.stdout).toMatch(/<tspan font-weight="bold">mem<\/tspan>[^<]*ignored: its RAM is not in the file/);
  expect(svg.stdout).toMatch(/<rect fill="url\(#ignored\)" x="16" y="\d+" width="800"/);
}

describeQemu('compare and map: x-ignore-shared plain streams', () => {
  it('the left-out block is not read, differs from a file that holds it, and is drawn as ignored', () => checks('stream-xis-32m', 'stream-32m'));
});

describeQemuOn(['11'], 'compare and map: x-ignore-shared mapped-ram (QEMU 11 writes it)', () => {
  it('the left-out block is not read, differs from a file that holds it, and is drawn as ignored', () => checks('mr-xis-32m', 'mr-32m'));
});
