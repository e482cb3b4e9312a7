// Progress of a conversion: what was read and written, for a TTY status line.
/** Progress of a conversion: what was read and written. */
export interface Progress {
  /** Bytes of input consumed. */
  bytesIn: number;
  /** Input size when known (files), else null (pipes). */
  totalIn: number | null;
  /** Bytes written to the output. */
  bytesOut: number;
}

/** Called with the progress now and then. */
export type ProgressListener = (p: Progress) => void;

/** Calls `listener` at most every `everyMs`, plus once with `final`. */
export function throttle(listener: ProgressListener | undefined, everyMs = 250): { tick(p: () => Progress): void; final(p: Progress): void } {
  let last = 0;
  let n = 0;
  return {
    tick(p) {
      if (!listener || (++n & 255) !== 0) return;
      const now = Date.now();
      if (now - last < everyMs) return;
      last = now;
      listener(p());
    },
    final(p) {
      listener?.(p);
    },
  };
}
