// The debug kernel (build/mram.debug.wasm: every kernel export, the bench-only scanScalar included,
// assertions on) instantiated through @assemblyscript/loader, whose `abort` import turns a failed
// kernel assertion into `Error: abort: MESSAGE at assembly/FILE.ts:LINE:COL`. The fuzz and
// differential kernel tests swap it in for the release kernel with
//   vi.mock('../../src/kernel/wasm.js', (original) => import('../support/debug-kernel.js').then((m) => m.withDebugKernel(original)));
// so a bounds violation in a fuzzed input names the kernel line instead of corrupting a neighbouring
// arena region (or trapping without a location at the end of memory).
import fs from 'node:fs';
import { instantiateSync } from '@assemblyscript/loader';
import type { Kernel, WasmMemory } from '../../src/kernel/wasm.js';

/** Path of the debug kernel; test/support/kernel-setup.ts builds it when missing or stale. */
export const DEBUG_KERNEL = new URL('../../build/mram.debug.wasm', import.meta.url);

/** Exports of the debug kernel: the production Kernel plus the bench-only scalar reference. */
export interface DebugKernel extends Kernel {
  scanScalar(ptr: number, len: number, pageSize: number, bitmapPtr: number, firstBit: number): number;
}

let compiled: WebAssembly.Module | undefined;

/** Instantiates the debug kernel against `memory` (imported as env.memory, as the release kernel is). */
export function instantiateDebugKernel(memory: WasmMemory): DebugKernel {
  compiled ??= new WebAssembly.Module(fs.readFileSync(DEBUG_KERNEL));
  return instantiateSync<DebugKernel>(compiled, { env: { memory } }).exports as unknown as DebugKernel;
}

/** vi.mock factory for src/kernel/wasm.js: the module as it is, with the debug kernel instantiated. */
export async function withDebugKernel<T extends object>(original: () => Promise<T>): Promise<T> {
  return { ...(await original()), instantiateKernel: instantiateDebugKernel };
}
