import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A private TMPDIR per run; the run fails if a suite leaves anything in it.
    globalSetup: ['./test/support/tmp-guard.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // QEMU-driven tests are heavy; two cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
