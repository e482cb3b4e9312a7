// One progress style for every long-running command (convert, verify, extract, and later compare):
// a single line on stderr, rewritten in place, only when stderr is a terminal and -q is not given.
import { humanBytes } from './text.js';

/** A progress line on stderr: update() rewrites it in place, done() ends it. */
export interface ProgressLine {
  /** `done` of `total` bytes (total null when unknown, e.g. a pipe); `extra` is appended. */
  update(done: number, total: number | null, extra?: string): void;
  /** Clears the line; prints `summary` as the command's last stderr line (a TTY only). */
  end(summary?: string): void;
}

const EVERY_MS = 200;

/** "convert: 37% of 8.00 GiB, 412 MiB/s, ETA 13 s" on a TTY; a no-op elsewhere or when quiet. */
export function progressLine(stderr: NodeJS.WritableStream & { isTTY?: boolean }, label: string, quiet: boolean): ProgressLine {
  if (quiet || stderr.isTTY !== true) return { update: () => undefined, end: () => undefined };
  const started = Date.now();
  let last = 0;
  let shown = false;
  return {
    update(done, total, extra) {
      const now = Date.now();
      if (now - last < EVERY_MS) return;
      last = now;
      shown = true;
      stderr.write(`\r${label}: ${progressText(done, total, now - started)}${extra ? `, ${extra}` : ''}\x1b[K`);
    },
    end(summary) {
      if (shown) stderr.write('\r\x1b[K');
      if (summary) stderr.write(`${label}: ${summary} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    },
  };
}

/** "37% of 8.00 GiB, 412 MiB/s, ETA 13 s", or "1.20 GiB, 412 MiB/s" when the total is unknown. */
export function progressText(done: number, total: number | null, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
  const speed = `${humanBytes(Math.round(rate))}/s`;
  if (!total) return `${humanBytes(done)}, ${speed}`;
  const pct = Math.min(100, Math.floor((100 * done) / total));
  const eta = rate > 0 ? `, ETA ${Math.max(0, Math.ceil((total - done) / rate))} s` : '';
  return `${pct}% of ${humanBytes(total)}, ${speed}${eta}`;
}
