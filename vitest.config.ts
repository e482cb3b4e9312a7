import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A private TMPDIR per run; the run fails if a suite leaves anything in it. The debug kernel
    // (build/mram.debug.wasm) is built when missing, for the kernel and fuzz suites.
    globalSetup: ['./test/support/tmp-guard.ts', './test/support/kernel-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // QEMU-driven tests are heavy; two cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
