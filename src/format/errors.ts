/**
 * What kind of defect ended a parse, so consumers (e.g. `verify`) can classify it without parsing
 * the message. 'truncated': the input ends inside a record; 'no-eof': it ends at a record boundary
 * before the EOF record; 'mapped-ram': a record the configured RAM encoding cannot contain;
 * 'overlap': a mapped-ram page area placed over its own header; 'page-size': a mapped-ram header
 * page size that cannot size a bitmap; 'framing': anything else that makes
 * the next byte position unknowable.
 */
export type FormatErrorKind =
  | 'magic'
  | 'version'
  | 'truncated'
  | 'no-eof'
  | 'framing'
  | 'footer'
  | 'configuration'
  | 'device'
  | 'vmdesc'
  | 'mapped-ram'
  | 'overlap'
  | 'page-size';

/** A file does not follow the format: names the absolute file offset and what was expected there. */
export class FormatError extends Error {
  override readonly name = 'FormatError';
  constructor(
    readonly offset: number,
    readonly expected: string,
    readonly found?: string,
    readonly kind: FormatErrorKind = 'framing',
  ) {
    super(`at offset ${offset} (0x${offset.toString(16)}): expected ${expected}${found === undefined ? '' : `, found ${found}`}`);
  }
}

/** The same error under another classification (message unchanged); other errors pass through. */
export function reclassify(e: unknown, kind: FormatErrorKind): unknown {
  return e instanceof FormatError ? new FormatError(e.offset, e.expected, e.found, kind) : e;
}

/**
 * Guest memory of a RAM block that x-ignore-shared left out of the file: the destination maps it
 * from the shared memory backend, so no page of it can be read from the file. `code` makes the
 * CLI report it as one line with exit 1, like an I/O error.
 */
export class IgnoredBlockError extends Error {
  override readonly name = 'IgnoredBlockError';
  readonly code = 'EIGNOREDBLOCK';
  constructor(readonly block: string) {
    super(`RAM block ${JSON.stringify(block)} was left out by x-ignore-shared: its memory is not in the file (QEMU maps it from the shared memory backend)`);
  }
}

/** The caller asked for something impossible (bad option, missing block); not a defect of the file. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** n as 0x-prefixed hex, as error messages print offsets and values. */
export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
