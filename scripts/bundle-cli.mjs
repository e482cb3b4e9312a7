// Bundles the built CLI (dist/cli/main.js and everything it imports) into one CommonJS file,
// dist/cli/mram.cjs, which bin/mram.js loads. Node 20 loads ES modules one by one, asynchronously,
// resolving each path; for the 60-odd modules of a command that was 40 ms of every command's start-up
// (bench/FINDINGS.md, "Start-up"). The ES modules under dist/ stay the library's entry points.
// The bundle sits beside the modules it replaces, so their `new URL('../../build/mram.wasm',
// import.meta.url)` resolve to the same files.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cli/main.js'],
  outfile: 'dist/cli/mram.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Less to read and parse at every start (8 ms here); names stay, so stack traces still read.
  minifyWhitespace: true,
  define: { 'import.meta.url': '__mramModuleUrl' },
  banner: { js: "const __mramModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
