// `verify` as a library call: wrapper, stream walk, layout, page content and digests → one report.
import { CAPABILITY_MAPPED_RAM, LIBVIRT_FORMAT_SPARSE } from '../format/constants.js';
import { FormatError, UsageError } from '../format/errors.js';
import type { PositionalSource } from '../io/source.js';
import { hasCapability } from '../codec/state.js';
import { openInput, sniffLibvirt } from '../reader/input.js';
import type { RamBlock } from '../reader/ram-block.js';
import { checkContent, type ContentOptions } from './content.js';
import { Findings, type Finding } from './findings.js';
import { checkLayout, type MappedBlock } from './layout.js';
import { findStreamStart, hasMagicAt } from '../reader/find-stream.js';
import { withReaderArena } from '../reader/page-reader.js';
import { walkStream, type StreamMap } from './walk.js';
import { BlockContentHasher, combineContentDigests, type ContentDigest } from '../digest/content-digest.js';
import { hasSetBit } from '../kernel/bit-runs.js';
import { dataRanges, type ByteRange } from '../io/extents.js';
import { FileSource } from '../io/file-source.js';
import { isIgnoredEntry } from '../codec/ram.js';

/** Options of verifyFile. */
export interface VerifyOptions {
  /** Where the QEMU stream starts; default: after a libvirt header if any, else 0. */
  offset?: number;
  /** Metadata only: no page data is read (no content checks, no digests). */
  quick?: boolean;
  /** SHA-256 of each RAM block's guest-visible content. */
  digest?: boolean;
  /** The content digest of the guest's RAM (non-zero pages only, the same in every format; spec §12). */
  contentDigest?: boolean;
  /** Called as page data is read, with the bytes read so far and the total. */
  progress?: ContentOptions['progress'];
  /** Use O_DIRECT for page reads (default true). */
  direct?: boolean;
  /** The path is a qcow2 image: check the VM state of this internal snapshot (name or id). */
  snapshot?: string;
}

// Below this many bytes of page-area chunks without a set bit, reading them costs less than asking FIEMAP.
const READ_ALL_BELOW = 256 << 20;
// Plain verify reads one chunk at a time on the main thread, at dd's best read size: the reads of a
// fragmented file are the whole cost, and concurrent O_DIRECT reads of one are slower (bench/FINDINGS.md).
// The digests keep the reader's default: their hashing is the cost, and reads in flight overlap it.
const BLOCKING_READS = { blocking: true, chunkBytes: 1 << 20 } as const;
const DIGEST_READS = { chunkBytes: 4 << 20 } as const;

/** qemu-img check convention. */
export const VerifyExit = { OK: 0, NOT_CHECKED: 1, ERRORS: 2, WARNINGS: 3 } as const;

/** What verifyFile found (what `mram verify --json` prints). */
export interface VerifyReport {
  ok: boolean;
  exitCode: number;
  /** False when the file could not be checked (unreadable, not a QEMU migration file). */
  checked: boolean;
  file: string;
  size: number;
  allocated: number;
  streamOffset: number;
  format: 'mapped-ram' | 'stream' | null;
  errors: Finding[];
  warnings: Finding[];
  /** Findings beyond the per-code cap, counted per code. */
  suppressed: Record<string, number>;
  /** Block idstr → SHA-256 hex of its guest-visible RAM (with `digest`). */
  digests: Record<string, string>;
  /** With `contentDigest`: the content digest, or null when some block's RAM is not all in the file. */
  contentDigest: ContentDigest | null;
}

/** Checks a migration file (or a qcow2 snapshot's VM state): framing, layout, page content and, with `digest`, SHA-256 of each block. Never throws for a defect of the file: that is a finding. */
export async function verifyFile(path: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  if (opts.quick && (opts.digest || opts.contentDigest)) throw new UsageError(`--quick reads no page data, so it cannot be combined with ${opts.digest ? '--digest' : '--content-digest'}`);
  const findings = new Findings();
  let source: PositionalSource;
  try {
    source = await openInput(path, opts.snapshot);
  } catch (e) {
    // A wrong or missing --snapshot, or a qcow2 image this reader refuses: one line, not a finding.
    if (e instanceof UsageError || (e instanceof FormatError && opts.snapshot !== undefined)) throw e;
    // A compressed save whose data does not decompress: a defect of the file, found.
    if (e instanceof FormatError) {
      findings.add('E_DECOMPRESS', e.offset, e.message);
      return report(path, null, findings, {}, true, null);
    }
    const err = e as NodeJS.ErrnoException;
    findings.add('E_OPEN', 0, err.message ?? String(e));
    return report(path, null, findings, {}, false, null);
  }
  try {
    const { streamOffset, checked, prefix, libvirtFormat } = await locateStream(source, opts, findings);
    if (streamOffset > source.size) throw new UsageError(`offset ${streamOffset} is beyond the end of the file (${source.size} bytes)`);
    if (!checked) return report(path, source, findings, {}, false, null, streamOffset);
    // No magic at 0 and no libvirt header: name where a stream starts, if one does (file:PATH,offset=N).
    if (opts.offset === undefined && libvirtFormat === null && prefix === null && !(await hasMagicAt(source, 0))) {
      const at = await findStreamStart(source);
      if (at !== null) {
        findings.add('E_MAGIC', 0, `no QEMU migration magic "QEVM" at offset 0; a QEMU stream starts at offset ${at}: use --offset ${at}`);
        return report(path, source, findings, {}, false, null, streamOffset);
      }
    }

    const map = await walkStream(source, streamOffset, findings);
    if (!map.isMigration) return report(path, source, findings, {}, false, null, streamOffset);
    const configured = hasCapability(map.config, CAPABILITY_MAPPED_RAM);
    if (libvirtFormat !== null && map.config && (libvirtFormat === LIBVIRT_FORMAT_SPARSE) !== configured) {
      findings.add('E_CONFIG_MAPPED_RAM', 16 + 12, `libvirt format ${libvirtFormat} ${libvirtFormat === LIBVIRT_FORMAT_SPARSE ? 'says sparse (mapped-ram)' : 'is not sparse'}, but the stream's mapped-ram capability is ${configured ? 'on' : 'off'}`);
    }
    const mapped = await checkLayout(source, map, findings, prefix);
    const { digests, content } = opts.quick ? { digests: {}, content: null } : await checkPages(source, streamOffset, map, mapped, findings, opts);
    return report(path, source, findings, digests, true, map.mappedRam ? 'mapped-ram' : 'stream', streamOffset, content);
  } finally {
    await source.close();
  }
}

/** Where the stream starts (after a libvirt header unless `offset` says), and what lies before it. */
async function locateStream(source: PositionalSource, opts: VerifyOptions, findings: Findings) {
  let streamOffset = opts.offset ?? 0;
  let checked = true;
  let prefix: { start: number; end: number; what: string } | null = null;
  let libvirtFormat: number | null = null;
  const libvirt = await sniffLibvirt(source);
  if (libvirt && 'error' in libvirt) {
    findings.add('E_LIBVIRT_HEADER', libvirt.error.offset, `libvirt header: ${libvirt.error.message}`);
    if (opts.offset === undefined) checked = false;
  } else if (libvirt) {
    const h = libvirt.fixed;
    if (!h.complete) findings.add('E_LIBVIRT_INCOMPLETE', 0, 'libvirt header magic is "LibvirtQemudPart": the save did not complete');
    libvirtFormat = h.format;
    if (opts.offset === undefined) streamOffset = h.dataOffset;
    prefix = { start: 0, end: Math.min(streamOffset, h.dataOffset), what: 'libvirt header' };
  } else if (streamOffset > 0) prefix = { start: 0, end: streamOffset, what: 'bytes before the stream offset' };
  return { streamOffset, checked, prefix, libvirtFormat };
}

/**
 * Bytes of whole 4 KiB blocks in [0, end) that hold a non-zero byte: a lower bound of what that
 * range allocates (all-zero blocks may be holes), so an allocated prefix cannot hide holes under
 * set bits.
 */
async function nonZeroBlockBytes(source: PositionalSource, end: number): Promise<number> {
  const BLOCK = 4096;
  const whole = Math.floor(Math.min(end, source.size) / BLOCK) * BLOCK;
  const buf = new Uint8Array(Math.min(whole, 1 << 20));
  let n = 0;
  for (let at = 0; at < whole; at += buf.length) {
    const len = Math.min(buf.length, whole - at);
    await source.readInto(buf.subarray(0, len), at);
    for (let b = 0; b < len; b += BLOCK) if (buf.subarray(b, b + BLOCK).some((x) => x !== 0)) n += BLOCK;
  }
  return n;
}

/** Page content checks, `--digest` and `--content-digest`: everything that reads page data. */
async function checkPages(source: PositionalSource, streamOffset: number, map: StreamMap, mapped: MappedBlock[], findings: Findings, opts: VerifyOptions): Promise<{ digests: Record<string, string>; content: ContentDigest | null }> {
  // A block x-ignore-shared left out has no content in the file to check or digest.
  const streamBlocks: RamBlock[] = map.blocks.flatMap((b) => (b.stream && !b.stream.ignored ? [b.stream] : []));
  // The bytes before the stream (offset=N prefix, libvirt header) hold disk blocks too.
  const metadataBytes = map.metadata.reduce((n, s) => n + Math.max(0, Math.floor(s.end / 4096) - Math.ceil(s.start / 4096)) * 4096, 0) + (await nonZeroBlockBytes(source, streamOffset));
  const reads = opts.digest || opts.contentDigest ? DIGEST_READS : BLOCKING_READS;
  const dataRanges = await fileDataRanges(source, mapped, reads.chunkBytes);
  const r = await withReaderArena((arena) =>
    checkContent(source, metadataBytes, mapped, streamBlocks, arena, findings, { digest: opts.digest ?? false, contentDigest: opts.contentDigest, dataRanges, progress: opts.progress, direct: opts.direct, ...reads }),
  { ...opts, ...reads });
  return { digests: r.digests, content: opts.contentDigest ? combineKnown(map, r.contentBlocks) : null };
}

/**
 * Where the file holds data, when that can save reading: page areas beyond their set bits larger
 * than READ_ALL_BELOW, in a file on a file system with FIEMAP. Null means read every chunk.
 */
async function fileDataRanges(source: PositionalSource, mapped: MappedBlock[], chunkBytes: number): Promise<ByteRange[] | null> {
  const path = source instanceof FileSource ? source.procPath() : null;
  if (path === null) return null;
  // Only chunks without a set bit can be skipped: a dense guest's extent list would cost, not save.
  let skippable = 0;
  for (const b of mapped) {
    const chunkPages = Math.max(8, Math.floor(chunkBytes / b.pageSize / 8) * 8);
    for (let p = 0; p < b.pages; p += chunkPages) if (!hasSetBit(b.bitmap, p, Math.min(chunkPages, b.pages - p))) skippable += chunkPages * b.pageSize;
  }
  return skippable < READ_ALL_BELOW ? null : dataRanges(path);
}

/** The content digest when every block's RAM is known (digested, or left out by x-ignore-shared). */
function combineKnown(map: StreamMap, known: Map<string, Buffer>): ContentDigest | null {
  const all = new Map<string, Buffer>();
  for (const { entry, pageSize, stream } of map.blocks) {
    const leftOut = stream ? stream.ignored : isIgnoredEntry(entry);
    const d = leftOut ? new BlockContentHasher(entry.idstr, entry.usedLength, pageSize, true).finish() : known.get(entry.idstr);
    if (!d || (stream && !map.complete)) return null;
    all.set(entry.idstr, d);
  }
  return combineContentDigests(all);
}

function report(path: string, source: PositionalSource | null, f: Findings, digests: Record<string, string>, checked: boolean, format: VerifyReport['format'], streamOffset = 0, contentDigest: ContentDigest | null = null): VerifyReport {
  const errors = f.count('error');
  const warnings = f.count('warning');
  const exitCode = !checked ? VerifyExit.NOT_CHECKED : errors > 0 ? VerifyExit.ERRORS : warnings > 0 ? VerifyExit.WARNINGS : VerifyExit.OK;
  return {
    ok: checked && errors === 0,
    exitCode,
    checked,
    file: source?.path ?? path,
    size: source?.size ?? 0,
    allocated: source?.allocated ?? 0,
    streamOffset,
    format,
    errors: f.errors,
    warnings: f.warnings,
    suppressed: Object.fromEntries(f.suppressed),
    digests,
    contentDigest,
  };
}
