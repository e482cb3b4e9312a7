// The debug kernel through @assemblyscript/loader: a call out of bounds aborts with the kernel's
// message and its assembly/*.ts file and line, where the release kernel would read or write
// whatever lies there (or trap with no location at the very end of memory).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Arena } from '../../src/kernel/index.js';
import { instantiateDebugKernel } from '../support/debug-kernel.js';

const PAGE = 65536;

// Line of the first assert in `file` whose message starts with `prefix`, read from the source
// (so the test follows the kernel's edits instead of hard-coding a line number).
function assertLine(file: string, prefix: string): number {
  const lines = fs.readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(`assert(`) && l.includes(`'${prefix}`));
  if (i < 0) throw new Error(`no assert '${prefix}…' in ${file}`);
  return i + 1;
}

describe('debug kernel (build/mram.debug.wasm via @assemblyscript/loader)', () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 4 });
  const kernel = instantiateDebugKernel(memory);
  const end = 4 * PAGE;

  it('works as the release kernel in bounds', () => {
    new Uint8Array(memory.buffer, PAGE, 3 * 4096).set([1], 4096);
    expect(kernel.scanSimd(PAGE, 3 * 4096, 4096, 4096, 0)).toBe(1);
    expect(kernel.scanScalar(PAGE, 3 * 4096, 4096, 4096, 0)).toBe(1);
    expect(new Uint8Array(memory.buffer, 4096, 1)[0]).toBe(0b010);
  });

  it('names assembly/index.ts and the line of the failed assert for a scan past the end of memory', () => {
    const line = assertLine('assembly/index.ts', 'scanSimd: pages past');
    expect(() => kernel.scanSimd(end - 4096, 2 * 4096, 4096, 4096, 0)).toThrow(`abort: scanSimd: pages past the end of memory at assembly/index.ts:${line}:`);
  });

  it('names assembly/index.ts for a bitmap or run buffer past the end of memory', () => {
    expect(() => kernel.scanSimd(PAGE, 4096, 4096, end, 0)).toThrow(/^abort: scanSimd: bitmap past the end of memory at assembly\/index\.ts:\d+:\d+$/);
    expect(() => kernel.bitRuns(4096, 0, 64, 1, end - 8)).toThrow(/^abort: bitRuns: no room .* at assembly\/index\.ts:\d+:\d+$/);
  });

  it('names assembly/stage.ts for an extent past the end of memory', () => {
    const line = assertLine('assembly/stage.ts', 'stagePageRecords: extent past');
    expect(() => kernel.stagePageRecords(PAGE, 0, 12, 0, 64, end - 4096, 4096, 4160)).toThrow(`at assembly/stage.ts:${line}:`);
  });

  it('names assembly/bench.ts for the bench-only scalar reference', () => {
    expect(() => kernel.scanScalar(PAGE, 4096, 1000, 4096, 0)).toThrow(/^abort: scanScalar: page size .* at assembly\/bench\.ts:\d+:\d+$/);
  });

  it('is the kernel of every arena in the kernel and fuzz suites (vi.mock of src/kernel/wasm.js)', async () => {
    // This file does not mock; the mocked suites get what this instantiates. Prove the swap is
    // observable: an arena built on the debug kernel aborts with a location, the release one does not.
    const arena = new Arena({ bytes: 1 << 20 });
    const release = () => arena.kernel.scanSimd(arena.memory.buffer.byteLength - 4096, 2 * 4096, 4096, 4096, 0);
    expect(release).toThrow(WebAssembly.RuntimeError);
    const mocked = await import('../support/debug-kernel.js');
    const debug = mocked.instantiateDebugKernel(arena.memory);
    expect(() => debug.scanSimd(arena.memory.buffer.byteLength - 4096, 2 * 4096, 4096, 4096, 0)).toThrow(/at assembly\/index\.ts:\d+:\d+$/);
  });
});
