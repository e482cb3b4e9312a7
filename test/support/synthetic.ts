// Small mapped-ram files written with mram's own writer from given block contents (for tests that
// need exact, chosen RAM; files QEMU wrote are the fixtures).
import { MappedRamWriter } from '../../src/writer/index.js';

export interface SyntheticBlock {
  id: string;
  /** Guest RAM of the block (a multiple of 4096 bytes); all-zero pages become holes. */
  data: Uint8Array;
}

const CONFIG = { machineType: 'pc-q35-10.0', targetPageBits: null, capabilities: ['mapped-ram'], uuid: null, subsectionOrder: ['configuration/capabilities'] };

/** Writes a complete mapped-ram file of the blocks (plus optional device sections). */
export async function writeMappedRam(path: string, blocks: SyntheticBlock[], devices: { idstr: string; payload: Uint8Array }[] = []): Promise<void> {
  const w = await MappedRamWriter.create(path, { configuration: CONFIG as never, blocks: blocks.map((b) => ({ id: b.id, usedLength: b.data.length })), force: true });
  for (const b of blocks) if (b.data.length) await w.writePages(b.id, 0, b.data);
  for (const d of devices) await w.writeDevice({ idstr: d.idstr, version: 1 }, d.payload);
  // The vmdesc sizes each device section: one buffer field of its payload's length.
  const described = devices.map((d) => ({ name: d.idstr, instance_id: 0, vmsd_name: d.idstr, version: 1, fields: [{ name: 'data', type: 'buffer', size: d.payload.length }] }));
  await w.writeVmdesc(JSON.stringify({ page_size: 4096, devices: described }));
  await w.finish();
}

/** `pages` pages of 4096 bytes; `fill(page)` gives a page's byte (0 = a zero page). */
export function pagesOf(pages: number, fill: (page: number) => number): Uint8Array {
  const data = new Uint8Array(pages * 4096);
  for (let p = 0; p < pages; p++) {
    const v = fill(p);
    if (v) data.fill(v, p * 4096, (p + 1) * 4096);
  }
  return data;
}
