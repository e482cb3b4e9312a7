// The generated parts of bench/README.md: each benchmark rewrites only the text between its
// `<!-- table:NAME -->` and `<!-- /table:NAME -->` markers; the rest of the file is kept by hand
// (method), and what the figures mean lives in bench/FINDINGS.md.
import fs from 'node:fs';

/** Replaces the body of table NAME in the Markdown file at `file`; refuses when the markers are missing. */
export function writeTable(file, name, body) {
  const text = fs.readFileSync(file, 'utf8');
  const open = `<!-- table:${name} -->\n`;
  const close = `<!-- /table:${name} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close, a);
  if (a < 0 || b < 0) throw new Error(`${file}: no ${open.trim()} … ${close} markers (add them where the table goes)`);
  fs.writeFileSync(file, text.slice(0, a + open.length) + body.replace(/\n*$/, '\n') + text.slice(b));
}
