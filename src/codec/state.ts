// The explicit state of a migration stream being decoded: what `decode` needs between records,
// and the derived facts every consumer reads instead of working them out again.
import { CAPABILITY_MAPPED_RAM, CAPABILITY_X_IGNORE_SHARED } from '../format/constants.js';
import { targetPageSize, type Configuration } from './configuration.js';
import type { RamBlockEntry } from './ram.js';
import type { MigrationRecord } from './record.js';
import type { SectionHeader } from './section.js';
import type { LocatedVmdesc } from './vmdesc.js';

/** Where in the stream the next byte belongs (internal to `decode`; a consumer reads the facts). */
export type Phase =
  | { at: 'header' }
  /** Top level: the next byte is a record type. */
  | { at: 'record' }
  /** A RAM section header was handed out: its version is judged next. */
  | { at: 'ram-version'; header: SectionHeader; sectionOffset: number }
  /** Inside a RAM section: the next bytes are a RAM record's word. */
  | { at: 'ram'; header: SectionHeader; sectionOffset: number }
  /** Inside a MEM_SIZE record: `left` bytes of RAM still to be declared by block entries. */
  | { at: 'blocks'; header: SectionHeader; sectionOffset: number; left: number }
  /** A mapped-ram block entry was handed out: the walk jumps over its page area next. */
  | { at: 'jump'; header: SectionHeader; sectionOffset: number; left: number; entry: RamBlockEntry }
  /** A FULL device section header was handed out: its payload is next. */
  | { at: 'device'; header: SectionHeader; sectionOffset: number }
  | { at: 'footer'; header: SectionHeader; sectionOffset: number }
  /** After the EOF record: a vmdesc, trailing bytes or the end. */
  | { at: 'tail' }
  | { at: 'vmdesc-json'; offset: number; length: number }
  | { at: 'after-vmdesc' }
  /** Bytes after the stream from `offset`: `head` consumed with the step that found them, then `counted`. */
  | { at: 'trailing'; offset: number; head: number; counted: number }
  /** A record ends the walk: it is handed out next. */
  | { at: 'stop'; record: MigrationRecord }
  | { at: 'done' };

/** How the RAM encoding (mapped-ram or not) is decided at the first block entry. */
export type EncodingRule =
  /** As the configuration says (what QEMU's loader does). */
  | 'configured'
  /** As the bytes after the first block entry show, so that `verify` can name a configuration that lies. */
  | 'as-found';

/** The configuration said one RAM encoding, the bytes after the first block entry the other. */
export interface EncodingMismatch {
  idstr: string;
  headerOffset: number;
  /** What the configuration said (mapped-ram on or off); the stream is decoded the other way. */
  configured: boolean;
}

/** Options of a new StreamState. */
export interface StreamStateOptions {
  /** Absolute offset of the stream's first byte (its "QEVM" magic). */
  offset?: number;
  /**
   * The vmdesc, when the caller located it already (e.g. from the end of a file); null = the input
   * has none. Left undefined, `decode` asks for it at the first device section.
   */
  vmdesc?: LocatedVmdesc | null;
  encoding?: EncodingRule;
}

/**
 * Everything `decode` carries from one record to the next, and the facts consumers read: the
 * configuration, the target page size, whether blocks carry mapped-ram headers, the open
 * sections, the declared blocks, the block CONTINUE pages belong to, the next device's index.
 */
export class StreamState {
  /** Absolute offset of the stream's magic. */
  readonly start: number;
  /** Absolute offset where decoding goes on (advanced by `decode`). */
  offset: number;
  /** @internal Where the next byte belongs. */
  phase: Phase = { at: 'header' };
  /** The stream version from the file header (3), 0 before it. */
  version = 0;
  /** The configuration record (null before or without one). */
  config: Configuration | null = null;
  /** Target page size: the configuration's, 4096 before or without it. */
  pageSize = targetPageSize(null);
  /** Whether the blocks carry mapped-ram headers (pages then live in page areas, not in records). */
  mappedRam = false;
  /** Whether x-ignore-shared is on (block entries then carry the guest address). */
  ignoreShared = false;
  /** Sections opened by START records, by section id. */
  readonly sections = new Map<number, SectionHeader>();
  /** The blocks declared by MEM_SIZE, by name, in stream order. */
  readonly blocks = new Map<string, RamBlockEntry>();
  /** The block of the last page record named: CONTINUE pages belong to it (QEMU keeps it across sections). */
  current: RamBlockEntry | null = null;
  /** Index in the vmdesc of the next FULL device section. */
  deviceIndex = 0;
  /** The vmdesc that sizes device sections (undefined: not looked for yet). */
  vmdesc: LocatedVmdesc | null | undefined;
  /** The OR of the host page sizes postcopy-ram advised, or null (no POSTCOPY_ADVISE with sizes). */
  postcopyPageSizes: bigint | null = null;
  /** An OPEN_RETURN_PATH was seen: QEMU can then answer a PING. */
  returnPath = false;
  /** A RAM START without its END so far (an EOF now means the stream lost its tail). */
  ramOpen = false;
  /** How the RAM encoding is decided at the first block entry. */
  readonly encoding: EncodingRule;
  /** Whether the RAM encoding was decided (at the first block entry). */
  encodingResolved = false;
  /** Set when the bytes contradicted the configuration (only with encoding 'as-found'). */
  encodingMismatch: EncodingMismatch | null = null;

  constructor(opts: StreamStateOptions = {}) {
    this.start = opts.offset ?? 0;
    this.offset = this.start;
    this.vmdesc = opts.vmdesc;
    this.encoding = opts.encoding ?? 'configured';
  }

  /** Takes in a decoded configuration: page size and capabilities follow from it. */
  configure(config: Configuration): void {
    this.config = config;
    this.pageSize = targetPageSize(config);
    this.mappedRam = hasCapability(config, CAPABILITY_MAPPED_RAM);
    this.ignoreShared = hasCapability(config, CAPABILITY_X_IGNORE_SHARED);
  }

  /** True once the EOF record was decoded. */
  get pastEof(): boolean {
    const at = this.phase.at;
    return at === 'tail' || at === 'vmdesc-json' || at === 'after-vmdesc' || at === 'trailing' || at === 'done';
  }

  /** True inside a RAM section's page records, past its block list (where the converter's pre-pass may run). */
  get inRamPages(): boolean {
    return this.phase.at === 'ram';
  }
}

/** Whether `config` lists the capability (false without a configuration or capabilities subsection). */
export function hasCapability(config: Configuration | null, name: string): boolean {
  return config?.capabilities?.includes(name) ?? false;
}
