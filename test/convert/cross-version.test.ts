// Files cross QEMU generations through mram: a QEMU 10.0 save converted and loaded by QEMU 11,
// and a QEMU 11 save (machine pc-q35-10.0, which both know) converted and loaded by QEMU 10.
// The truth is the guest RAM: the destination's memory equals the source's image byte for byte.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getFixture } from '../support/fixtures.js';
import { generation, loadGuest, qemuAvailable, requireQemuOrSkip, type QemuGeneration } from '../support/qemu.js';
import { convertSuite, firstDifferentPage, runCli } from './support.js';

const Q10 = generation('10');
const Q11 = generation('11');
const scratch = convertSuite();

// Both generations are needed at once; requireQemuOrSkip throws when CI is set and one is missing.
const skip = requireQemuOrSkip(Q10) || requireQemuOrSkip(Q11);

async function crossOver(fixture: string, from: QemuGeneration, to: QemuGeneration, machine: string): Promise<void> {
  const fx = await getFixture(fixture, from);
  const out = path.join(scratch(), `${fixture}-${from.key}-to-${to.key}.mig`);
  const r = runCli(['convert', fx.file, out]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const { ram } = await loadGuest({ file: out, mappedRam: !fx.meta.mappedRam, memMiB: fx.meta.memMiB, generation: to, machine });
  expect(firstDifferentPage(ram, fs.readFileSync(fx.ramImage))).toBe(-1);
}

describe.skipIf(skip)('cross-version round trips through mram [QEMU 10.0 ⇄ QEMU 11]', () => {
  it('both generations are the ones the README names', () => {
    expect(qemuAvailable(Q10) && qemuAvailable(Q11)).toBe(true);
  });

  it('QEMU 10 mapped-ram save → mram convert --to stream → QEMU 11 loads it (pc-q35-10.0)', async () => {
    await crossOver('mr-32m', Q10, Q11, 'pc-q35-10.0');
  });

  it('QEMU 10 plain stream → mram convert --to mapped-ram → QEMU 11 loads it (pc-q35-10.0)', async () => {
    await crossOver('stream-32m', Q10, Q11, 'pc-q35-10.0');
  });

  it('QEMU 11 mapped-ram save of a pc-q35-10.0 guest → mram convert --to stream → QEMU 10 loads it', async () => {
    await crossOver('mr-m100-32m', Q11, Q10, 'pc-q35-10.0');
  });

  it('QEMU 11 plain stream of a pc-q35-10.0 guest → mram convert --to mapped-ram → QEMU 10 loads it', async () => {
    await crossOver('stream-m100-32m', Q11, Q10, 'pc-q35-10.0');
  });
});
