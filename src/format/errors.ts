/** A file does not follow the format: names the absolute file offset and what was expected there. */
export class FormatError extends Error {
  override readonly name = 'FormatError';
  constructor(
    readonly offset: number,
    readonly expected: string,
    readonly found?: string,
  ) {
    super(`at offset ${offset} (0x${offset.toString(16)}): expected ${expected}${found === undefined ? '' : `, found ${found}`}`);
  }
}

/** The caller asked for something impossible (bad option, missing block); not a defect of the file. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
