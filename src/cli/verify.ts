// `mram verify FILE [--offset N] [--json] [--digest] [--content-digest] [--quick]`: findings, a verdict, qemu-img-like exit codes.
import { escapeControl } from '../format/escape.js';
import { hex } from '../format/errors.js';
import type { Finding } from '../verify/findings.js';
import { verifyFile, type VerifyReport } from '../verify/verify.js';
import { defineCommand, fileArgument, positionals, sizeOption, INPUT_OFFSET_OPTION } from './command.js';
import { reportError } from './io.js';

/** `mram verify FILE`: the integrity checks, exit 0/1/2/3. */
export const verify = defineCommand(
  {
    name: 'verify',
    synopsis: ['FILE [--offset N] [--digest] [--content-digest] [--quick] [--snapshot NAME|ID] [--json] [-q]'],
    about: `Checks a QEMU migration file (mapped-ram or plain stream, optionally libvirt-wrapped).
FILE cannot be - (stdin).`,
    options: {
      offset: INPUT_OFFSET_OPTION,
      digest: { type: 'boolean', help: "SHA-256 of each RAM block's guest-visible content (= sha256sum of its raw RAM image)" },
      'content-digest': { type: 'boolean', help: 'one SHA-256 over the non-zero pages of all blocks: the same for the same RAM in every format, costs what the file stores (spec/format.md §12)' },
      quick: { type: 'boolean', help: 'metadata only: no page data is read' },
      snapshot: { type: 'string', value: 'S', help: 'FILE is a qcow2 image: check the VM state of its internal snapshot S (name or id)' },
    },
    footer: 'Exit status: 0 clean, 1 could not check, 2 errors found, 3 warnings only, 64 usage error.',
  },
  async ({ io, values, positionals: args, json, progress }) => {
    const [file] = positionals(args, ['FILE']) as [string];
    fileArgument(file, 'verify');
    const offset = sizeOption(values, 'offset');
    try {
      const line = progress('verify');
      const r = await verifyFile(file, { offset, digest: values.digest === true, contentDigest: values['content-digest'] === true, quick: values.quick === true, snapshot: values.snapshot as string | undefined, progress: (done, total) => line.update(done, total) });
      line.end();
      io.stdout.write(json ? JSON.stringify(toJson(r), null, 2) + '\n' : human(r, values['content-digest'] === true));
      return r.exitCode;
    } catch (e) {
      return reportError(io, 'verify', e, file);
    }
  },
);

/** An open error is about the file as a whole: it has no offset. */
const offsetOf = (f: Finding) => (f.code === 'E_OPEN' ? null : f.offset);

function toJson(r: VerifyReport) {
  const finding = (f: Finding) => ({ code: f.code, offset: offsetOf(f), message: f.message, ...(f.block === undefined ? {} : { block: f.block }) });
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
    contentDigest: r.contentDigest,
  };
}

function human(r: VerifyReport, contentAsked = false): string {
  const lines: string[] = [];
  for (const f of [...r.errors, ...r.warnings]) {
    const block = f.block === undefined ? '' : ` [${escapeControl(f.block)}]`;
    const at = offsetOf(f);
    lines.push(`${f.severity === 'error' ? 'error  ' : 'warning'} ${f.code}${at === null ? '' : ` at ${hex(at)}`}${block}: ${escapeControl(f.message)}`);
  }
  for (const [code, n] of Object.entries(r.suppressed)) lines.push(`        ${code}: ${n} more not shown`);
  for (const [id, d] of Object.entries(r.digests)) lines.push(`sha256 ${d}  ${escapeControl(id)}`);
  if (r.contentDigest) lines.push(`content ${r.contentDigest.digest}`);
  else if (contentAsked && r.checked) lines.push('no content digest: the RAM of some block is not all in the file');
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
