// Which RAM encoding a migration stream uses, from its first records (file header, configuration).
import { nextRecord } from '../codec/records.js';
import { StreamState } from '../codec/state.js';
import { FileCursor } from '../io/cursor.js';
import type { PositionalSource } from '../io/source.js';

/** The two RAM encodings of a migration stream. */
export type MigrationFormat = 'mapped-ram' | 'stream';

/**
 * The stream's facts from its file header and the record after it: the state's `config` is null
 * when that record is not a configuration. Throws the FormatError of a malformed start.
 */
export async function readStreamStart(source: PositionalSource, offset: number): Promise<StreamState> {
  const state = new StreamState({ offset, vmdesc: null });
  const c = new FileCursor(source, offset);
  if (await nextRecord(c, state)) await nextRecord(c, state);
  return state;
}

/** 'mapped-ram' when the configuration lists the capability, else 'stream' (header and configuration only are read). */
export async function detectFormat(source: PositionalSource, offset: number): Promise<MigrationFormat> {
  return (await readStreamStart(source, offset)).mappedRam ? 'mapped-ram' : 'stream';
}
