// The wasm scanner's bitmap of a guest's RAM image is the bitmap QEMU itself wrote into the file.
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { MappedRamBlock, MigrationFile, scanPages } from '../../src/index.js';
import { getFixture } from '../support/fixtures.js';
import { describeQemu } from '../support/qemu.js';
// The debug kernel (assertions on, through @assemblyscript/loader): a kernel bounds violation names its assembly/*.ts line.
vi.mock('../../src/kernel/wasm.js', (original) => import('../support/debug-kernel.js').then((m) => m.withDebugKernel(original)));

async function compare(name: string): Promise<void> {
  const fx = await getFixture(name);
  const file = await MigrationFile.open(fx.file, { offset: fx.meta.offset });
  try {
    const mem = file.block('mem') as MappedRamBlock;
    const ours = scanPages(readFileSync(fx.ramImage), 4096);
    expect(ours.nonZeroPages).toBe(mem.presentPages);
    expect(Buffer.from(ours.bitmap).equals(mem.bitmap)).toBe(true);
  } finally {
    await file.close();
  }
}

describe('scanner vs QEMU bitmaps', () => {
  for (const name of ['mr-32m', 'mr-mfd-32m', 'mr-dio-32m', 'mr-off-32m', 'libvirt-mr-32m', 'mr-live-32m']) {
    it(name, () => compare(name));
  }
});

describeQemu('scanner vs QEMU bitmaps (256 MiB guests)', () => {
  it('mr-256m', () => compare('mr-256m'));
  it('mr-mfd-256m', () => compare('mr-mfd-256m'));
});
