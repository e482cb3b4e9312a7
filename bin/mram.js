#!/usr/bin/env node
// CommonJS on purpose: this file runs before libuv's first asynchronous file operation, which is
// when libuv sizes its threadpool. mram's O_DIRECT page writes wait their turn in that pool
// (ext4 runs one file's allocating O_DIRECT writes one at a time), and a deeper queue keeps the
// disk busier, so the pool gets 12 threads unless the user chose a size (see bench/FINDINGS.md).
// The CLI itself is one bundled file (scripts/bundle-cli.mjs): it loads in a fraction of the time
// its ES modules take.
'use strict';
process.env.UV_THREADPOOL_SIZE ??= '12';
const { main } = require('../dist/cli/mram.cjs');
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
