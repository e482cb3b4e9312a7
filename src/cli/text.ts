// Plain-text formatting for terminal output.

export { humanBytes } from '../format/units.js';

/** Left/right-aligned columns; `right[i]` aligns column i to the right. */
export function table(head: string[], rows: string[][], right: boolean[]): string[] {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((cell, i) => (right[i] ? cell.padStart(width[i]!) : cell.padEnd(width[i]!))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}
