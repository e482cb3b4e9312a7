// `mram verify FILE [--offset N] [--json] [--digest] [--quick]`: findings, a verdict, qemu-img-like exit codes.
import { UsageError } from '../format/errors.js';
import { escapeControl } from '../format/escape.js';
import { hex } from '../format/errors.js';
import type { Finding } from '../verify/findings.js';
import { verifyFile, type VerifyReport } from '../verify/verify.js';
import { EXIT_OK, parseSize, reportError, type CliIO, type Command } from './io.js';

const HELP = `usage: mram verify FILE [--offset N] [--json] [--digest] [--quick] [--snapshot NAME|ID]

Checks a QEMU migration file (mapped-ram or plain stream, optionally libvirt-wrapped).
  --offset N   the QEMU stream starts at byte N (like file:PATH,offset=N)
  --json       machine-readable report on stdout
  --digest     SHA-256 of each RAM block's guest-visible content (= sha256sum of its raw RAM image)
  --quick      metadata only: no page data is read
  --snapshot S FILE is a qcow2 image: check the VM state of its internal snapshot S
Exit status: 0 clean, 1 could not check, 2 errors found, 3 warnings only.
`;

interface VerifyArgs {
  file: string;
  offset?: number;
  json: boolean;
  digest: boolean;
  quick: boolean;
  snapshot?: string;
}

function parseArgs(args: string[]): VerifyArgs | null {
  const out: Partial<VerifyArgs> = { json: false, digest: false, quick: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') return null;
    else if (a === '--json') out.json = true;
    else if (a === '--digest') out.digest = true;
    else if (a === '--quick') out.quick = true;
    else if (a === '--snapshot') {
      out.snapshot = args[++i];
      if (out.snapshot === undefined) throw new UsageError('--snapshot needs a name or id');
    }    else if (a === '--offset' || a.startsWith('--offset=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[++i];
      if (v === undefined) throw new UsageError('--offset needs a value');
      out.offset = parseSize(v, '--offset');
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${JSON.stringify(a)}`);
    else if (out.file !== undefined) throw new UsageError('verify takes one FILE');
    else out.file = a;
  }
  if (out.file === undefined) throw new UsageError('verify needs a FILE');
  return out as VerifyArgs;
}

export const verify: Command = async (args: string[], io: CliIO): Promise<number> => {
  let opts: VerifyArgs | null;
  try {
    opts = parseArgs(args);
  } catch (e) {
    io.stderr.write(HELP);
    return reportError(io, 'verify', e);
  }
  if (!opts) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  try {
    const progress = io.stderr.isTTY ? progressLine(io) : undefined;
    const r = await verifyFile(opts.file, { offset: opts.offset, digest: opts.digest, quick: opts.quick, snapshot: opts.snapshot, progress: progress?.update });
    progress?.clear();
    io.stdout.write(opts.json ? JSON.stringify(toJson(r), null, 2) + '\n' : human(r));
    return r.exitCode;
  } catch (e) {
    return reportError(io, 'verify', e, opts.file);
  }
};

function toJson(r: VerifyReport) {
  const finding = (f: Finding) => ({ code: f.code, offset: f.offset, message: f.message, ...(f.block === undefined ? {} : { block: f.block }) });
  return {
    ok: r.ok,
    exitCode: r.exitCode,
    checked: r.checked,
    file: r.file,
    format: r.format,
    streamOffset: r.streamOffset,
    size: r.size,
    allocated: r.allocated,
    errors: r.errors.map(finding),
    warnings: r.warnings.map(finding),
    suppressed: r.suppressed,
    digests: r.digests,
  };
}

function human(r: VerifyReport): string {
  const lines: string[] = [];
  for (const f of [...r.errors, ...r.warnings]) {
    const block = f.block === undefined ? '' : ` [${escapeControl(f.block)}]`;
    lines.push(`${f.severity === 'error' ? 'error  ' : 'warning'} ${f.code} at ${hex(f.offset)}${block}: ${escapeControl(f.message)}`);
  }
  for (const [code, n] of Object.entries(r.suppressed)) lines.push(`        ${code}: ${n} more not shown`);
  for (const [id, d] of Object.entries(r.digests)) lines.push(`sha256 ${d}  ${escapeControl(id)}`);
  const errors = r.errors.length + count(r, 'E_');
  const warnings = r.warnings.length + count(r, 'W_');
  const file = escapeControl(r.file);
  if (!r.checked) lines.push(`${file}: could not be checked.`);
  else if (errors > 0) lines.push(`${file}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}: the file is damaged; restoring it may fail or lose data.`);
  else if (warnings > 0) lines.push(`${file}: no errors, ${warnings} warning${warnings === 1 ? '' : 's'}.`);
  else lines.push(`${file}: no errors were found (${r.format ?? 'unknown'}).`);
  return lines.join('\n') + '\n';
}

function count(r: VerifyReport, prefix: string): number {
  return Object.entries(r.suppressed).reduce((n, [code, k]) => n + (code.startsWith(prefix) ? k : 0), 0);
}

function progressLine(io: CliIO) {
  let last = 0;
  return {
    update: (done: number, total: number) => {
      const now = Date.now();
      if (now - last < 200 && done < total) return;
      last = now;
      io.stderr.write(`\rverify: ${((100 * done) / Math.max(total, 1)).toFixed(0)}% of ${(total / 2 ** 20).toFixed(0)} MiB`);
    },
    clear: () => io.stderr.write('\r\x1b[K'),
  };
}
