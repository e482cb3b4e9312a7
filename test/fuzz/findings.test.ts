// Replays the fuzz campaign's findings (test/fixtures/fuzz, written by scripts/fuzz-campaign.ts
// --export): each is a real QEMU save plus the mutations that made mram misbehave, with QEMU's own
// verdict on the mutant. Without QEMU: every command must end cleanly (no crash, no hang), and a
// command that succeeds must agree with QEMU — refuse what QEMU refuses, give the RAM QEMU loads.
// Findings still "open" are expected to fail (it.fails): when one is fixed the test says so, and
// its status becomes "fixed". "beyond-format" ones (device state only QEMU's device code can judge,
// verify finds nothing) are checked for clean ends only.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { applyMutations, replayProblems, type Finding, type Mutation, type QemuVerdict, type Seed } from '../support/campaign.js';
import { COMMITTED_DIR } from '../support/fixtures.js';
import { tempDir } from '../verify/support.js';
// The debug kernel (assertions on, through @assemblyscript/loader): a kernel bounds violation names its assembly/*.ts line.
vi.mock('../../src/kernel/wasm.js', (original) => import('../support/debug-kernel.js').then((m) => m.withDebugKernel(original)));

interface FuzzFixture {
  seed: string;
  seedInfo?: Seed;
  mutations: Mutation[];
  qemu: QemuVerdict;
  findings: Finding[];
  status: 'open' | 'fixed' | 'beyond-format';
}

const FUZZ_DIR = path.join(COMMITTED_DIR, 'fuzz');
const fixtures = fs.existsSync(FUZZ_DIR) ? fs.readdirSync(FUZZ_DIR).filter((f) => f.endsWith('.json')).sort() : [];
const dir = tempDir('mram-fuzz-findings-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const LIMITS = { timeoutMs: 120_000, rssCapKiB: 2 * 2 ** 20 };
const seeds = new Map<string, Buffer>();

function mutant(name: string, fx: FuzzFixture): string {
  let seed = seeds.get(fx.seed);
  if (!seed) seeds.set(fx.seed, (seed = zlib.gunzipSync(fs.readFileSync(path.join(FUZZ_DIR, fx.seed)))));
  const file = path.join(dir, `${name}.mig`);
  fs.writeFileSync(file, applyMutations(seed, fx.mutations));
  return file;
}

describe('fuzz campaign findings', () => {
  it('are present', () => expect(fixtures.length).toBeGreaterThan(0));
  for (const name of fixtures.map((f) => f.slice(0, -5))) {
    const fx = JSON.parse(fs.readFileSync(path.join(FUZZ_DIR, `${name}.json`), 'utf8')) as FuzzFixture;
    const title = `${name}: ${[...new Set(fx.findings.map((f) => `${f.kind} (${f.command})`))].join(', ')}`;
    (fx.status === 'open' ? it.fails : it)(title, async () => {
      const input = mutant(name, fx);
      const out = fs.mkdtempSync(path.join(dir, `${name}-`));
      const { problems, codes } = await replayProblems(input, out, fx.qemu, fx.seedInfo?.load.snapshot, LIMITS, dir, fx.status !== 'beyond-format');
      fs.rmSync(out, { recursive: true, force: true });
      fs.rmSync(input, { force: true });
      expect(problems, JSON.stringify(codes)).toEqual([]);
    });
  }
});
