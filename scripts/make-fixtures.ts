// Generate the fixture catalogue with real QEMU, for each QEMU generation.
//   npx vite-node scripts/make-fixtures.ts [--commit] [--only a,b] [--committed-only] [--qemu 10|11]
// --commit rewrites the compressed committed fixtures in test/fixtures (only the entries committed
// for that generation, see FixtureSpec.commit). --qemu limits the run to one generation.
import fs from 'node:fs';
import path from 'node:path';
import {
  COMMITTED_DIR,
  FIXTURES,
  SPECIAL_FIXTURES,
  commitFixture,
  committedFor,
  describeSizes,
  fixtureWritableBy,
  generateFixture,
  pruneCommittedRamImages,
} from '../test/support/fixtures.js';
import { GENERATIONS, qemuVersion, liveQemuCount } from '../test/support/qemu.js';

const argv = process.argv.slice(2);
const commit = argv.includes('--commit');
const committedOnly = argv.includes('--committed-only');
const onlyIdx = argv.indexOf('--only');
const only = onlyIdx >= 0 ? new Set(argv[onlyIdx + 1]!.split(',')) : null;
const qemuIdx = argv.indexOf('--qemu');
const gens = GENERATIONS.filter((g) => qemuIdx < 0 || g.key === argv[qemuIdx + 1]);

const t0 = performance.now();
for (const gen of gens) {
  const v = qemuVersion(gen);
  if (!v) {
    console.error(`make-fixtures: QEMU ${gen.key} not found (run ${gen.install})`);
    process.exit(1);
  }
  console.log(`make-fixtures: QEMU ${v}`);
  const names = [...Object.values(FIXTURES), ...Object.values(SPECIAL_FIXTURES)]
    .filter((s) => fixtureWritableBy(s.name, gen))
    .filter((s) => (only ? only.has(s.name) : true))
    .filter((s) => (committedOnly || (commit && !only) ? committedFor(s, gen) : true))
    .map((s) => s.name);
  for (const name of names) {
    const t = performance.now();
    const fx = await generateFixture(name, { generation: gen });
    const ram = fx.meta.stats.ram!;
    console.log(
      `${name.padEnd(22)} ${((performance.now() - t) / 1000).toFixed(1)}s  mig ${describeSizes(fx.file)}  ` +
        `ram nz pages ${fx.meta.ramNonZeroPages}  normal ${ram.normal} dup ${ram.duplicate} syncs ${ram['dirty-sync-count']}`,
    );
    if (commit && committedFor((FIXTURES[name] ?? SPECIAL_FIXTURES[name])!, gen)) {
      const c = commitFixture(name, gen);
      console.log(`  committed ${c.files.map((f) => path.basename(f)).join(', ')}`);
    }
  }
}
if (commit) {
  const removed = pruneCommittedRamImages();
  if (removed.length) console.log(`pruned ${removed.join(', ')}`);
  let total = 0;
  for (const f of fs.readdirSync(COMMITTED_DIR)) total += fs.statSync(path.join(COMMITTED_DIR, f)).size;
  console.log(`test/fixtures total ${(total / 1024).toFixed(0)} KiB`);
}
console.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s; live QEMU processes: ${liveQemuCount()}`);
