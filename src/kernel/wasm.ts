import { readFileSync } from 'node:fs';

/** Exports of build/mram.wasm; every pointer is an offset into the arena's memory. */
export interface Kernel {
  heapBase(): number;
  scanSimd(ptr: number, len: number, pageSize: number, bitmapPtr: number, firstBit: number): number;
  scanScalar(ptr: number, len: number, pageSize: number, bitmapPtr: number, firstBit: number): number;
  bitRuns(bitmapPtr: number, firstBit: number, nbits: number, value: number, outPtr: number): number;
  stagePageRecords(src: number, srcLen: number, pageShift: number, extentAddr: number, limitPages: number, dst: number, staged: number, touched: number): number;
}

/** The part of WebAssembly.Memory we use (the repo's TS lib has no WebAssembly typings). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number }) => WasmMemory;
}

const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Bytes per wasm memory page. */
export const WASM_PAGE = 65536;

/** Largest memory a wasm32 arena may own: one page short of 4 GiB keeps ptr+len from wrapping to 0. */
export const MAX_WASM_PAGES = 65535;

let compiled: object | undefined;

// Compiled once per process; each arena instantiates it against its own memory.
function kernelModule(): object {
  // Same relative path from src/kernel (vitest) and dist/kernel (compiled).
  compiled ??= new wasmApi.Module(readFileSync(new URL('../../build/mram.wasm', import.meta.url)));
  return compiled;
}

/** A fixed-size memory: initial = maximum, so its buffer is never detached by growth. */
export function createMemory(pages: number): WasmMemory {
  return new wasmApi.Memory({ initial: pages, maximum: pages });
}

/** The kernel instantiated against `memory` (the module is compiled once per process). */
export function instantiateKernel(memory: WasmMemory): Kernel {
  return new wasmApi.Instance(kernelModule(), { env: { memory } }).exports as Kernel;
}
