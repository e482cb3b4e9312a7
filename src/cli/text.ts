// Plain-text formatting for terminal output.

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/** Left/right-aligned columns; `right[i]` aligns column i to the right. */
export function table(head: string[], rows: string[][], right: boolean[]): string[] {
  // A reduce, not Math.max(...rows): a file may list 100,000s of blocks (spread overflows the stack).
  const width = head.map((h, i) => rows.reduce((w, r) => Math.max(w, r[i]!.length), h.length));
  const fmt = (r: string[]) => r.map((cell, i) => (right[i] ? cell.padStart(width[i]!) : cell.padEnd(width[i]!))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}
