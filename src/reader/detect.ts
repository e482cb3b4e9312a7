// Which RAM encoding a migration stream uses, from its configuration record.
import { CAPABILITY_MAPPED_RAM } from '../format/constants.js';
import { readRecords } from '../codec/records.js';
import { FileCursor } from '../io/cursor.js';
import type { PositionalSource } from '../io/source.js';

export type MigrationFormat = 'mapped-ram' | 'stream';

/** 'mapped-ram' when the configuration lists the capability, else 'stream' (header and configuration only are read). */
export async function detectFormat(source: PositionalSource, offset: number): Promise<MigrationFormat> {
  for await (const r of readRecords(new FileCursor(source, offset), { vmdesc: null })) {
    if (r.type === 'configuration') return r.config.capabilities?.includes(CAPABILITY_MAPPED_RAM) ? 'mapped-ram' : 'stream';
    if (r.type !== 'header') break;
  }
  return 'stream';
}
