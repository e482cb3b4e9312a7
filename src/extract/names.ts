// Block idstr → a file name that stays inside the output directory.
//
// Mapping: bytes [A-Za-z0-9_@+-] and '.' (except leading) are kept; every other byte, including
// '/', '%' and control characters, becomes %XX (uppercase hex); ".ram" is appended. The mapping
// is reversible ('%' is always escaped). Names longer than 240 bytes are cut and get '~' plus 16
// hex digits of the idstr's SHA-256, keeping them distinct.
// Example: "/rom@etc/acpi/tables" → "%2From@etc%2Facpi%2Ftables.ram".
import { nodeCrypto } from '../io/builtins.js';
import path from 'node:path';
import { UsageError } from '../format/errors.js';

const KEEP = /[A-Za-z0-9_@+\-]/;
const MAX_STEM = 240;

/** The file name of a block's image (see the mapping above). */
export function blockFileName(idstr: string): string {
  let stem = '';
  for (let i = 0; i < idstr.length; i++) {
    const ch = idstr[i]!;
    const code = ch.charCodeAt(0) & 0xff;
    stem += KEEP.test(ch) || (ch === '.' && i > 0) ? ch : `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (stem.length > MAX_STEM) {
    const h = nodeCrypto().createHash('sha256').update(Buffer.from(idstr, 'latin1')).digest('hex').slice(0, 16);
    stem = `${stem.slice(0, MAX_STEM - 17)}~${h}`;
  }
  return `${stem}.ram`;
}

/** The output path of a block under `dir`; refuses anything that would leave `dir`. */
export function blockPath(dir: string, idstr: string): string {
  const root = path.resolve(dir);
  const p = path.resolve(root, blockFileName(idstr));
  if (path.dirname(p) !== root) throw new UsageError(`block ${JSON.stringify(idstr)} maps outside ${dir}`);
  return p;
}
