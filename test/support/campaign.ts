// The fuzz campaign's parts shared with the replay test: mutations of real QEMU files, every mram
// command run as a subprocess with a time and memory cap, and the judge that compares each
// command's outcome with what QEMU's own loader makes of the same file.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Qcow2Image, VmStateSource } from '../../src/qcow2/index.js';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { pickSnapshot } from '../../src/reader/snapshot.js';
import { REPO_ROOT } from './fixtures.js';
import { mulberry32 } from './random.js';

// ---------------------------------------------------------------- seeds

/** How QEMU reads a seed back: the capabilities and offset its save used. */
export interface LoadSettings {
  mappedRam: boolean;
  multifd?: number;
  /** Where QEMU's stream starts (libvirt header or a prefix before it). */
  offset?: number;
  /** A qcow2 image: the internal snapshot whose VM state QEMU loads (loadvm) and mram reads (--snapshot). */
  snapshot?: string;
  /** A compressed libvirt save: the program QEMU's stream goes through first, as libvirt runs it. */
  compressed?: 'zstd' | 'gzip';
}

/**
 * A pristine input the campaign mutates. `kind` names the family (new families — compressed,
 * qcow2 — add a kind and a maker in scripts/fuzz-campaign.ts; the judge only needs `load`).
 */
export interface Seed {
  name: string;
  kind: 'mapped-ram' | 'stream' | 'libvirt' | 'compressed' | 'qcow2';
  /** QEMU generation that wrote it ("10.0.2", "11.1.3"). */
  qemuVersion: string;
  file: string;
  memMiB: number;
  load: LoadSettings;
}

// ---------------------------------------------------------------- mutations

export type Mutation =
  | { op: 'set'; at: number; bytes: number[] }
  | { op: 'truncate'; at: number }
  | { op: 'delete'; at: number; length: number }
  | { op: 'insert'; at: number; bytes: number[] };

export function applyMutations(pristine: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(pristine);
  for (const m of ms) {
    const at = Math.min(m.at, b.length);
    if (m.op === 'set') {
      for (let i = 0; i < m.bytes.length && at + i < b.length; i++) b[at + i] = m.bytes[i]!;
    } else if (m.op === 'truncate') b = b.subarray(0, at);
    else if (m.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + m.length))]);
    else b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
  }
  return b;
}

/**
 * Offsets worth hitting: record and section starts, block entries, mapped-ram headers and bitmaps.
 * In a qcow2 image: its header, snapshot table and L1 tables, and the VM state's points mapped to
 * the clusters holding them. In a compressed save: the libvirt header and the compressed stream's start.
 */
export async function structureOf(seed: Seed): Promise<{ points: number[]; bitmaps: Array<[number, number]> }> {
  if (seed.load.compressed) {
    const points = [...Array.from({ length: 23 }, (_, i) => i * 4), seed.load.offset ?? 0, (seed.load.offset ?? 0) + 4];
    return { points, bitmaps: [] };
  }
  const snapshot = seed.load.snapshot ? await qcow2Structure(seed.file, seed.load.snapshot) : null;
  const f = await MigrationFile.open(seed.file, { snapshot: seed.load.snapshot });
  const points = new Set<number>();
  const bitmaps: Array<[number, number]> = [];
  try {
    for (let i = 0; i < 92; i += 4) if (f.libvirt) points.add(i);
    points.add(f.streamOffset);
    for (const s of f.sections) {
      points.add(s.offset);
      points.add(s.offset + s.length - 1);
    }
    for (const b of f.blocks) {
      points.add(b.entry.entryOffset);
      const m = b.entry.mappedRam;
      if (m) {
        for (const d of [0, 4, 12, 20]) points.add(m.headerOffset + d);
        points.add(m.pagesOffset);
        bitmaps.push([m.bitmapOffset, Math.ceil(b.pages / 8)]);
      }
    }
    let n = 0;
    for await (const r of f.records()) {
      // Streams have one record per page: keep a sample so page records do not crowd out the rest.
      if ((r.type !== 'ram-page' && r.type !== 'ram-zero') || n++ % 16 === 0) points.add(r.offset);
    }
  } finally {
    await f.close();
  }
  // A snapshot's points are VM state offsets: moved to the file offsets of the clusters holding them.
  const host = snapshot ? (p: number) => snapshot.host(p) : (p: number) => p;
  return {
    points: [...new Set([...(snapshot?.points ?? []), ...[...points].map(host)])].filter((p) => p >= 0).sort((a, b) => a - b),
    bitmaps: bitmaps.map(([at, len]) => [host(at), len] as [number, number]).filter(([at]) => at >= 0),
  };
}

/** A qcow2 image's metadata points, and the host offset of a VM state offset (-1 where no data cluster holds it). */
async function qcow2Structure(file: string, name: string): Promise<{ points: number[]; host(p: number): number }> {
  const image = await Qcow2Image.open(file);
  const points: number[] = [];
  for (let i = 0; i < 112; i += 4) points.push(i);
  const h = image.header;
  for (let i = 0; i < Math.min(h.l1Size, 16); i++) points.push(h.l1TableOffset + 8 * i);
  points.push(h.refcountTableOffset);
  for (const s of image.snapshots) {
    for (let i = 0; i < 40; i += 4) points.push(s.entryOffset + i);
    for (let i = 0; i < Math.min(s.l1Size, 16); i++) points.push(s.l1TableOffset + 8 * i);
  }
  const src = await VmStateSource.open(image, pickSnapshot(image.snapshots, name));
  const hosts = new Map<number, number>();
  const vmstateClusters = Math.ceil(src.coverage / h.clusterSize);
  for (let c = 0; c < vmstateClusters; c++) {
    const m = await src.mapping(c);
    if (m.kind === 'data') hosts.set(c, m.host);
  }
  await image.close();
  return {
    points,
    host: (p) => {
      const at = hosts.get(Math.floor(p / h.clusterSize));
      return at === undefined ? -1 : at + (p % h.clusterSize);
    },
  };
}

const INTERESTING64 = [0n, 1n, 0xffn, 0x1000n, 0x2000n, 0x200n, 0x100000n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x1fffffffff000n, 0x1fffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn];

/** Mutation list number `index` of a seed: deterministic, so a finding reproduces from (seed, index). */
export function mutationsFor(pristine: Buffer, structure: { points: number[]; bitmaps: Array<[number, number]> }, seedName: string, index: number): Mutation[] {
  const h = crypto.createHash('sha256').update(`${seedName}/${index}`).digest();
  const rnd = mulberry32(h.readUInt32LE(0));
  const int = (n: number) => Math.floor(rnd() * n);
  const size = pristine.length;
  const target = (): number => {
    const r = rnd();
    if (r < 0.45 && structure.points.length) return Math.max(0, structure.points[int(structure.points.length)]! + int(40) - 8);
    if (r < 0.6 && structure.bitmaps.length) {
      const [at, len] = structure.bitmaps[int(structure.bitmaps.length)]!;
      return at + int(Math.max(1, len));
    }
    return int(size);
  };
  const count = rnd() < 0.6 ? 1 : rnd() < 0.6 ? 2 : 3 + int(2);
  const out: Mutation[] = [];
  for (let k = 0; k < count; k++) {
    const at = target();
    const r = rnd();
    if (r < 0.3) out.push({ op: 'set', at, bytes: [pristine[at]! ^ (1 << int(8))] });
    else if (r < 0.5) out.push({ op: 'set', at, bytes: [int(256)] });
    else if (r < 0.7) {
      const v = INTERESTING64[int(INTERESTING64.length)]!;
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(v);
      const width = [1, 2, 4, 8][int(4)]!;
      out.push({ op: 'set', at, bytes: [...b.subarray(8 - width)] });
    } else if (r < 0.8) {
      // A field's neighbour value: off by a little (lengths, offsets, counts).
      const b = Buffer.alloc(4);
      b.writeInt32BE(((pristine.readInt32BE(Math.min(at, size - 4)) + int(17) - 8) | 0));
      out.push({ op: 'set', at: Math.min(at, size - 4), bytes: [...b] });
    } else if (r < 0.87) {
      const from = target();
      const len = 1 + int(16);
      out.push({ op: 'set', at, bytes: [...pristine.subarray(from, Math.min(size, from + len))] });
    } else if (r < 0.93) out.push({ op: 'truncate', at });
    else if (r < 0.97) out.push({ op: 'delete', at, length: 1 + int(8) });
    else out.push({ op: 'insert', at, bytes: Array.from({ length: 1 + int(8) }, () => int(256)) });
    if (out.at(-1)!.op === 'truncate') break;
  }
  return out;
}

// ---------------------------------------------------------------- running commands

export interface RunLimits {
  timeoutMs: number;
  /** Resident set size at which the process is killed (KiB). */
  rssCapKiB: number;
}

export interface CommandOutcome {
  command: string;
  args: string[];
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  rssKilled: boolean;
  /** Peak RSS in KiB (from /usr/bin/time), or null when unknown. */
  maxRssKiB: number | null;
}

/** The mram under test: a long campaign points MRAM_BIN at a frozen copy, so rebuilding the clone does not disturb it. */
const MRAM = process.env.MRAM_BIN ?? path.join(REPO_ROOT, 'bin/mram.js');
const CAPTURE = 1 << 20;

/** Runs `node bin/mram.js ARGS` in its own process group under /usr/bin/time, with the limits. */
export function runMram(args: readonly string[], limits: RunLimits, workDir: string): Promise<CommandOutcome> {
  const rssFile = path.join(workDir, `rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const haveTime = fs.existsSync('/usr/bin/time');
  const [cmd, argv] = haveTime ? ['/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, MRAM, ...args]] : [process.execPath, [MRAM, ...args]];
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => {
      if (stdout.length < CAPTURE) stdout += d.toString('utf8');
    });
    p.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < CAPTURE) stderr += d.toString('utf8');
    });
    let timedOut = false;
    let rssKilled = false;
    const killGroup = () => {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, limits.timeoutMs);
    const poll = setInterval(() => {
      if (rssKiB(p.pid!) > limits.rssCapKiB) {
        rssKilled = true;
        killGroup();
      }
    }, 200);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      let maxRssKiB: number | null = null;
      try {
        const t = fs.readFileSync(rssFile, 'utf8');
        maxRssKiB = Number(t.trim().split('\n').at(-1)) || null;
        // time exits normally and says "Command terminated by signal N" when its child was killed.
        const sig = /terminated by signal (\d+)/.exec(t);
        if (sig) {
          code = null;
          signal = `signal ${sig[1]}` as NodeJS.Signals;
        }
      } catch {
        /* killed before time wrote it */
      }
      fs.rmSync(rssFile, { force: true });
      resolve({ command: args[0]!, args: [...args], code, signal, stdout, stderr, timedOut, rssKilled, maxRssKiB });
    });
  });
}

/** RSS of the process tree under `pid` (the node child of /usr/bin/time), KiB. */
function rssKiB(pid: number): number {
  let total = 0;
  const visit = (p: number) => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]);
      for (const c of fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) visit(Number(c));
    } catch {
      /* exited */
    }
  };
  visit(pid);
  return total;
}

// ---------------------------------------------------------------- the commands of one mutant

/**
 * Every command the campaign runs on a mutant, and where each writes its output. No --offset:
 * a libvirt header is found by the commands themselves, as an operator would rely on.
 */
export function commandsFor(input: string, outDir: string, snapshot?: string) {
  const s = snapshot === undefined ? [] : ['--snapshot', snapshot];
  return {
    inspect: ['inspect', input, ...s],
    verify: ['verify', input, '--digest', '--json', ...s],
    extract: ['extract', input, '--block', 'mem', '-o', path.join(outDir, 'mem.ram'), '--force', ...s],
    'convert-mapped-ram': ['convert', input, path.join(outDir, 'out.mram'), '--to', 'mapped-ram', '--force', ...s],
    'convert-stream': ['convert', input, path.join(outDir, 'out.mig'), '--to', 'stream', '--force', ...s],
  } as const;
}

export type CommandName = keyof ReturnType<typeof commandsFor>;
export const COMMAND_NAMES: CommandName[] = ['inspect', 'verify', 'extract', 'convert-mapped-ram', 'convert-stream'];

// ---------------------------------------------------------------- the judge

/** What QEMU's loader made of a file: the `mem` block's RAM (as a SHA-256), or its refusal. */
export type QemuVerdict = { loads: true; ramSha256: string } | { loads: false; error: string } | { loads: null; error: string };

export interface Finding {
  /** crash, hang, memory, or a disagreement with QEMU (see judge()). */
  kind: string;
  command: CommandName;
  detail: string;
}

const EXIT_CODES: Record<string, number[]> = { verify: [0, 1, 2, 3, 64] };

/** Crash, hang and memory findings: judged from the process alone. */
export function processFindings(name: CommandName, o: CommandOutcome, rssLimitKiB: number): Finding[] {
  const out: Finding[] = [];
  if (o.timedOut) out.push({ kind: 'hang', command: name, detail: `no exit within the time limit` });
  else if (o.rssKilled) out.push({ kind: 'memory', command: name, detail: `killed above the RSS cap` });
  else if (o.code === null) out.push({ kind: 'crash', command: name, detail: `killed by ${o.signal}` });
  else if (/internal error|\n\s+at [^\n]+:\d+:\d+\)?/.test(o.stderr)) out.push({ kind: 'crash', command: name, detail: errorLine(o.stderr) });
  else if (!(EXIT_CODES[o.command] ?? [0, 1, 64]).includes(o.code)) out.push({ kind: 'crash', command: name, detail: `exit ${o.code}: ${firstLine(o.stderr)}` });
  if (o.maxRssKiB !== null && o.maxRssKiB > rssLimitKiB && !o.rssKilled) out.push({ kind: 'memory', command: name, detail: `peak RSS ${o.maxRssKiB} KiB` });
  return out;
}

/** The line naming the error of a crash ("RangeError: ..."), else the first line. */
function errorLine(s: string): string {
  return s.split('\n').find((l) => /internal error|^\w*Error\b/.test(l)) ?? firstLine(s);
}

export function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() !== '') ?? '';
}

/** A finding's identity for de-duplication: numbers and quoted names blurred. */
export function signature(f: Finding): string {
  return `${f.kind}/${f.command}/${f.detail.replace(/0x[0-9a-f]+|\d+/gi, '#').replace(/"[^"]*"/g, '"…"').slice(0, 160)}`;
}

export function sha256(b: Uint8Array): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

export function sha256File(p: string): string {
  return sha256(fs.readFileSync(p));
}

/** The `mem` digest of `verify --digest --json`, or null. */
export function verifyDigest(o: CommandOutcome): string | null {
  try {
    return (JSON.parse(o.stdout) as { digests?: Record<string, string> }).digests?.mem ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- the replay

/**
 * What a build does wrong on a mutant, judged against QEMU's stored verdict: crashes, hangs, memory,
 * and (with `agreement`) successes that disagree with QEMU — exit 0 on a file it refuses, or other
 * RAM than it loads (a converted file's RAM read back by mram; QEMU judged it in the campaign).
 */
export async function replayProblems(input: string, out: string, qemu: QemuVerdict, snapshot: string | undefined, limits: RunLimits, workDir: string, agreement = true): Promise<{ problems: string[]; codes: Partial<Record<CommandName, number | null>> }> {
  const cmds = commandsFor(input, out, snapshot);
  const problems: string[] = [];
  const codes: Partial<Record<CommandName, number | null>> = {};
  for (const c of COMMAND_NAMES) {
    const o = await runMram(cmds[c], limits, workDir);
    codes[c] = o.code;
    for (const f of processFindings(c, o, 1 << 20)) problems.push(`${f.kind} in ${c}: ${f.detail}`);
    // inspect maps structure and claims nothing about loading (its exit 0 means "mapped to the end").
    if (o.code !== 0 || !agreement || c === 'inspect') continue;
    if (qemu.loads === false) problems.push(`${c} exits 0 on a file QEMU refuses (${qemu.error})`);
    else if (qemu.loads === true) {
      let got: string | null;
      if (c === 'extract') got = sha256File(path.join(out, 'mem.ram'));
      else if (c === 'verify') got = verifyDigest(o);
      else {
        const back = await runMram(['extract', path.join(out, c === 'convert-stream' ? 'out.mig' : 'out.mram'), '--block', 'mem', '-o', path.join(out, `${c}.ram`)], limits, workDir);
        got = back.code === 0 ? sha256File(path.join(out, `${c}.ram`)) : `unreadable: ${back.stderr.trim()}`;
      }
      if (got !== null && got !== qemu.ramSha256) problems.push(`${c} gives other RAM than QEMU loads`);
    }
  }
  return { problems, codes };
}

