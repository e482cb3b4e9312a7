// Make the qcow2 snapshot fixtures with QEMU 11 and commit them to test/fixtures (gzip).
//   MRAM_TRIXIE_ROOT=... npx vite-node scripts/make-qcow2-fixtures.ts [--only a,b]
import fs from 'node:fs';
import path from 'node:path';
import { GENERATED_DIR } from '../test/support/fixtures.js';
import { commitQcow2Fixture, getQcow2Fixture, QCOW2_FIXTURES } from '../test/support/qcow2.js';

const argv = process.argv.slice(2);
const i = argv.indexOf('--only');
const names = i >= 0 ? argv[i + 1]!.split(',') : Object.keys(QCOW2_FIXTURES);
for (const name of names) {
  // Regenerate: drop the cached copy so QEMU makes the image afresh.
  for (const f of [`${name}.qcow2`, `${name}.qcow2.json`]) fs.rmSync(path.join(GENERATED_DIR, f), { force: true });
  const { meta } = await getQcow2Fixture(name);
  console.log(`${name}: ${meta.qemu}, ${meta.snapshots.length} saves, ${commitQcow2Fixture(name)} bytes gzip`);
}
