#!/usr/bin/env node
// CommonJS on purpose: this file runs before the ESM loader's first asynchronous file read, which
// is when libuv sizes its threadpool. mram's O_DIRECT page writes wait their turn in that pool
// (ext4 runs one file's allocating O_DIRECT writes one at a time), and a deeper queue keeps the
// disk busier, so the pool gets 12 threads unless the user chose a size (see bench/FINDINGS.md).
'use strict';
process.env.UV_THREADPOOL_SIZE ??= '12';
import('../dist/cli/main.js').then(async ({ main }) => {
  process.exitCode = await main(process.argv.slice(2));
});
