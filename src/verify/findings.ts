// Collects findings; per-code caps keep the report (and memory) bounded on hostile files.
import { CHECK_CODES, severityOf, type Code, type Severity } from './codes.js';

/** One verify finding: its code, severity, file offset, message and block. */
export interface Finding {
  code: Code;
  severity: Severity;
  /** Absolute file offset the finding is about. */
  offset: number;
  message: string;
  /** RAM block idstr when the finding is about one block. */
  block?: string;
}

/** Detailed findings kept per code; the rest are only counted. */
export const MAX_FINDINGS_PER_CODE = 20;

/** The findings of one verify run, with at most MAX_FINDINGS_PER_CODE kept per code (the rest counted). */
export class Findings {
  readonly list: Finding[] = [];
  /** Findings dropped by the cap, per code. */
  readonly suppressed = new Map<Code, number>();
  private readonly perCode = new Map<Code, number>();

  add(code: Code, offset: number, message: string, block?: string): void {
    const n = this.perCode.get(code) ?? 0;
    this.perCode.set(code, n + 1);
    if (n >= MAX_FINDINGS_PER_CODE) {
      this.suppressed.set(code, (this.suppressed.get(code) ?? 0) + 1);
      return;
    }
    this.list.push({ code, severity: severityOf(code), offset, message, ...(block === undefined ? {} : { block }) });
  }

  has(code: Code): boolean {
    return (this.perCode.get(code) ?? 0) > 0;
  }

  count(severity: Severity): number {
    let n = 0;
    for (const [code, k] of this.perCode) if (CHECK_CODES[code].severity === severity) n += k;
    return n;
  }

  get errors(): Finding[] {
    return this.list.filter((f) => f.severity === 'error');
  }

  get warnings(): Finding[] {
    return this.list.filter((f) => f.severity === 'warning');
  }
}
