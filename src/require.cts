// The `require` entry of package.json: mram is an ES module. Where Node can require() ES modules
// (20.19, 22.12 and later) this hands over the module; elsewhere it fails with one line saying how to load it.
const ESM_ONLY = "mram is an ES module: load it with `import { MigrationFile } from 'mram'` or `await import('mram')` (require() of ES modules needs Node 20.19, 22.12 or later)";

function load(): unknown {
  try {
    return require('./index.js');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') throw Object.assign(new Error(ESM_ONLY), { code });
    throw e;
  }
}

module.exports = load();
