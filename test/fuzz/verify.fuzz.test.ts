// Hostile-file fuzzing: real QEMU files mutated deterministically; verify and the reader must fail cleanly.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FormatError, UsageError } from '../../src/format/errors.js';
import { MigrationFile } from '../../src/reader/migration-file.js';
import { getFixture } from '../support/fixtures.js';
import { runBin, runCli } from '../support/cli.js';
import { buildCli } from '../convert/support.js';
import { be32, be64, geometry, tempDir } from '../verify/support.js';
import { mulberry32 } from '../support/random.js';
// The debug kernel (assertions on, through @assemblyscript/loader): a kernel bounds violation names its assembly/*.ts line.
vi.mock('../../src/kernel/wasm.js', (original) => import('../support/debug-kernel.js').then((m) => m.withDebugKernel(original)));

type Patch = { at: number; bytes: number[] };
interface Case {
  name: string;
  patches?: Patch[];
  truncate?: number;
  /** The defect is always detectable: exit must be 1, 2 or 3. */
  mustDetect: boolean;
}

/** A working copy that is mutated in place and restored from the pristine bytes after each case. */
class Workbench {
  readonly file: string;
  /** Runs [start, end) of non-zero 4 KiB blocks of the pristine file, ascending. */
  private readonly data: Array<[number, number]> = [];
  constructor(
    readonly orig: Buffer,
    dir: string,
    name: string,
  ) {
    this.file = path.join(dir, name);
    for (let i = 0; i < orig.length; i += 4096) {
      const e = Math.min(i + 4096, orig.length);
      if (orig.subarray(i, e).some((x) => x !== 0)) {
        const last = this.data.at(-1);
        if (last && last[1] === i) last[1] = e;
        else this.data.push([i, e]);
      }
    }
    this.writeRange(0, orig.length);
  }
  apply(c: Case): void {
    if (c.truncate !== undefined) fs.truncateSync(this.file, c.truncate);
    for (const p of c.patches ?? []) this.write(p.at, Buffer.from(p.bytes));
  }
  restore(c: Case): void {
    if (c.truncate !== undefined) this.writeRange(c.truncate, this.orig.length);
    for (const p of c.patches ?? []) this.write(p.at, this.orig.subarray(p.at, p.at + p.bytes.length));
  }
  private write(at: number, b: Buffer): void {
    if (at >= this.orig.length) return;
    const fd = fs.openSync(this.file, 'r+');
    fs.writeSync(fd, b, 0, Math.min(b.length, this.orig.length - at), at);
    fs.closeSync(fd);
  }
  /** Restores [from, to) sparsely: only non-zero 4 KiB blocks are written, so holes stay holes. */
  private writeRange(from: number, to: number): void {
    const fd = fs.openSync(this.file, fs.existsSync(this.file) ? 'r+' : 'w+');
    fs.ftruncateSync(fd, from);
    fs.ftruncateSync(fd, to);
    for (const [s0, e0] of this.data) {
      const s = Math.max(s0, from);
      const e = Math.min(e0, to);
      if (s < e) fs.writeSync(fd, this.orig, s, e - s, s);
    }
    fs.closeSync(fd);
  }
}

const HUGE64 = [0n, 1n, 0xfffn, 0x1fffffffffffffn, 0x20000000000000n, 0x8000000000000000n, 0xffffffffffffffffn];

async function casesFor(file: string, full: boolean): Promise<Case[]> {
  const g = await geometry(file);
  if (!full) return libvirtCases(g);
  const rnd = mulberry32(0x5eed + g.size);
  const cases: Case[] = [];
  const size = g.size;
  // Truncation at every structure boundary (and one byte either side).
  const cuts = new Set<number>([g.streamOffset, g.streamOffset + 4, g.streamOffset + 8, size - 1]);
  for (const s of g.sections) for (const d of [0, s.length - 5, s.length - 1]) cuts.add(s.offset + d);
  for (const b of g.blocks) {
    for (const at of [b.entryOffset, b.entryOffset + 1, b.headerOffset, b.headerOffset + 12, b.headerOffset + 27, b.bitmapOffset, b.pagesOffset, b.pagesOffset + b.usedLength / 2]) if (at > 0) cuts.add(at);
  }
  for (const cut of [...cuts].filter((x) => x >= 0 && x < size).sort((a, b) => a - b)) cases.push({ name: `truncate@${cut}`, truncate: cut, mustDetect: true });

  // Huge or absurd values in every mapped-ram header field, used lengths and record lengths.
  for (const [i, b] of g.blocks.filter((x) => x.headerOffset > 0).entries()) {
    for (const field of [4, 12, 20]) {
      for (const v of i === 0 ? [...HUGE64, BigInt(size), BigInt(size - 1)] : [0n, 0x8000000000000000n, BigInt(size)]) {
        if (field === 12 && v === 1n) continue; // a bitmap moved by one byte can still be valid-looking
        cases.push({ name: `${b.id} hdr+${field}=${v}`, patches: [{ at: b.headerOffset + field, bytes: be64(v) }], mustDetect: true });
      }
    }
    cases.push({ name: `${b.id} version=${0xffffffff}`, patches: [{ at: b.headerOffset, bytes: be32(0xffffffff) }], mustDetect: true });
    const lenAt = b.entryOffset + 1 + Buffer.byteLength(b.id, 'latin1');
    for (const v of [0n, 0x1000n, 0x1fffffffff000n, 0xffffffffffffffffn]) cases.push({ name: `${b.id} used_length=${v}`, patches: [{ at: lenAt, bytes: be64(v) }], mustDetect: true });
    cases.push({ name: `${b.id} idstr len 0`, patches: [{ at: b.entryOffset, bytes: [0] }], mustDetect: true });
    cases.push({ name: `${b.id} idstr len 255`, patches: [{ at: b.entryOffset, bytes: [255] }], mustDetect: true });
    // Control characters in the idstr: must never reach the terminal raw.
    cases.push({ name: `${b.id} idstr ctl`, patches: [{ at: b.entryOffset + 1, bytes: [0x1b, 0x0a, 0x9b].slice(0, b.id.length) }, { at: b.headerOffset, bytes: be32(7) }], mustDetect: true });
  }
  // Overlapping regions: one block's areas pointed at another's.
  const mr = g.blocks.filter((x) => x.headerOffset > 0);
  for (let i = 1; i < mr.length; i++) {
    cases.push({ name: `overlap pages ${mr[i]!.id}->${mr[0]!.id}`, patches: [{ at: mr[i]!.headerOffset + 20, bytes: be64(BigInt(mr[0]!.pagesOffset)) }], mustDetect: true });
    cases.push({ name: `overlap bitmap ${mr[i]!.id}->${mr[i - 1]!.id}`, patches: [{ at: mr[i]!.headerOffset + 12, bytes: be64(BigInt(mr[i - 1]!.pagesOffset)) }], mustDetect: true });
  }
  // Record lengths: configuration machine-type length, vmdesc length.
  for (const v of [0xffffffff, 0x7fffffff, 256, 0]) cases.push({ name: `machine len ${v}`, patches: [{ at: g.streamOffset + 9, bytes: be32(v) }], mustDetect: true });
  const vm = g.sections.find((s) => s.type === 'vmdesc');
  if (vm) for (const v of [0xffffffff, 0x7fffffff, 0, vm.length]) cases.push({ name: `vmdesc len ${v}`, patches: [{ at: vm.offset + 1, bytes: be32(v) }], mustDetect: true });
  // Section framing: type bytes, ids, footers.
  for (const s of g.sections.filter((x) => ['start', 'part', 'end', 'full'].includes(x.type))) {
    cases.push({ name: `type ${s.type}@${s.offset}=0x55`, patches: [{ at: s.offset, bytes: [0x55] }], mustDetect: true });
    cases.push({ name: `id ${s.type}@${s.offset}`, patches: [{ at: s.offset + 1, bytes: be32(0xdeadbeef) }], mustDetect: true });
    cases.push({ name: `footer ${s.type}@${s.offset}`, patches: [{ at: s.offset + s.length - 5, bytes: [0] }], mustDetect: true });
  }
  // Random bit flips in headers, bitmaps and section framing (detection not guaranteed: payload bytes).
  const structural: Array<[number, number]> = [[g.streamOffset, g.streamOffset + 0x100]];
  for (const s of g.sections) structural.push([s.offset, s.offset + Math.min(s.length, 24)]);
  for (const b of mr) structural.push([b.entryOffset, b.headerOffset + 28], [b.bitmapOffset, b.bitmapOffset + Math.ceil(b.pages / 64) * 8]);
  for (let k = 0; k < 60; k++) {
    const [lo, hi] = structural[Math.floor(rnd() * structural.length)]!;
    const at = lo + Math.floor(rnd() * (hi - lo));
    const bit = 1 << Math.floor(rnd() * 8);
    cases.push({ name: `flip ${at}^${bit}`, patches: [{ at, bytes: [0] }], mustDetect: false });
    cases.at(-1)!.patches![0]!.bytes[0] = -bit; // resolved against the pristine byte below
  }
  for (let k = 0; k < 20; k++) {
    const at = Math.floor(rnd() * Math.min(size, 1 << 20));
    cases.push({ name: `garbage@${at}`, patches: [{ at, bytes: Array.from({ length: 8 }, () => Math.floor(rnd() * 256)) }], mustDetect: false });
  }
  return cases;
}

/** libvirt wrapper: header fields and cuts around the wrapper/stream boundary. */
function libvirtCases(g: Awaited<ReturnType<typeof geometry>>): Case[] {
  const le32 = (v: number) => be32(v).reverse();
  const cases: Case[] = [];
  for (const cut of [0, 15, 16, 91, 92, g.streamOffset - 1, g.streamOffset, g.streamOffset + 7]) cases.push({ name: `truncate@${cut}`, truncate: cut, mustDetect: true });
  for (const v of [0, 3, 0xffffffff]) cases.push({ name: `version ${v}`, patches: [{ at: 16, bytes: le32(v) }], mustDetect: true });
  for (const v of [0, 1, 0x7fffffff, 0xffffffff]) cases.push({ name: `data_len ${v}`, patches: [{ at: 20, bytes: le32(v) }], mustDetect: true });
  for (const v of [0, 1, 99]) cases.push({ name: `format ${v}`, patches: [{ at: 28, bytes: le32(v) }], mustDetect: true });
  cases.push({ name: 'Part magic', patches: [{ at: 12, bytes: [...Buffer.from('Part')] }], mustDetect: true });
  return cases;
}

const results = { cases: 0, detected: 0, maxMs: 0, rssMax: 0 };

describe('fuzz: verify and the reader on mutated QEMU files', () => {
  // tmpfs when available: restoring a case rewrites data that O_DIRECT reads would otherwise flush to disk first.
  const dir = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/mram-fuzz-') : tempDir('mram-fuzz-');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rssStart = process.memoryUsage().rss;

  for (const name of ['mr-32m', 'stream-32m', 'libvirt-mr-32m']) {
    describe(name, () => {
      let bench: Workbench;
      let cases: Case[];
      beforeAll(async () => {
        const fx = await getFixture(name);
        bench = new Workbench(fs.readFileSync(fx.file), dir, `${name}.mig`);
        cases = await casesFor(fx.file, !fx.meta.libvirt);
        for (const c of cases) for (const p of c.patches ?? []) if (p.bytes.length === 1 && p.bytes[0]! < 0) p.bytes[0] = bench.orig[p.at]! ^ -p.bytes[0]!;
        // A patch that writes the bytes already there is no mutation.
        cases = cases.filter((c) => c.truncate !== undefined || c.patches!.some((p) => !bench.orig.subarray(p.at, p.at + p.bytes.length).equals(Buffer.from(p.bytes))));
      });

      it('every mutation: exit 1/2/3 (0 only if the strict reader accepts it too), no stack trace, escaped output, bounded time and memory, file untouched', async () => {
        expect(cases.length).toBeGreaterThan(10);
        const t0suite = performance.now();
        let k = 0;
        for (const c of cases) {
          bench.apply(c);
          const hashBefore = k % 16 === 0 ? crypto.createHash('sha256').update(fs.readFileSync(bench.file)).digest('hex') : null;
          const t0 = performance.now();
          // Digests hash every byte of every declared block: only for mutations that cannot inflate them.
          const digest = k % 3 === 0 && c.truncate !== undefined;
          const r = await runCli(['verify', bench.file, ...(digest ? ['--digest'] : [])]);
          const ms = performance.now() - t0;
          if (ms > 1000) console.log(`[fuzz] slow: ${name} ${c.name} ${ms.toFixed(0)} ms`);
          const ctx = `${name} ${c.name}: exit ${r.code}\n${r.stdout}${r.stderr}`;
          expect([0, 1, 2, 3], ctx).toContain(r.code);
          expect(r.stderr, ctx).not.toMatch(/internal error|\n\s+at /);
          expect(r.stdout + r.stderr, ctx).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\x9b]/);
          expect(r.stdout.trim().split('\n').at(-1), ctx).toMatch(/could not be checked|error|warning|no errors were found/);
          expect(ms, ctx).toBeLessThan(5000);
          let strict: 'ok' | 'rejected' = 'ok';
          try {
            const f = await MigrationFile.open(bench.file);
            await f.close();
          } catch (e) {
            expect(e instanceof FormatError || e instanceof UsageError, `${ctx}\nreader threw ${(e as Error)?.stack}`).toBe(true);
            strict = 'rejected';
          }
          if (c.mustDetect || strict === 'rejected') expect([1, 2, 3], ctx).toContain(r.code);
          if (hashBefore) expect(crypto.createHash('sha256').update(fs.readFileSync(bench.file)).digest('hex'), ctx).toBe(hashBefore);
          results.cases++;
          if (r.code !== 0) results.detected++;
          results.maxMs = Math.max(results.maxMs, ms);
          results.rssMax = Math.max(results.rssMax, process.memoryUsage().rss);
          bench.restore(c);
          k++;
        }
        expect(results.rssMax - rssStart).toBeLessThan(1 << 30);
        console.log(`[fuzz] ${name}: ${cases.length} cases in ${((performance.now() - t0suite) / 1000).toFixed(1)} s`);
      }, 300_000); // ~800 cases; per-case time is bounded above, the total depends on machine load
    });
  }

  it('a stream declaring 20000 blocks of 512 MiB each (one zero page record each) stays bounded in memory', async () => {
    const parts: Buffer[] = [];
    const u8 = (v: number) => parts.push(Buffer.from([v]));
    const num = (v: number | bigint, n: 4 | 8) => parts.push(Buffer.from(n === 4 ? be32(Number(v)) : be64(BigInt(v))));
    const str = (t: string) => (u8(t.length), parts.push(Buffer.from(t, 'latin1')));
    const N = 20000;
    const L = 2 ** 29;
    num(0x5145564d, 4), num(3, 4);
    u8(7), num(11, 4), parts.push(Buffer.from('pc-q35-10.0'));
    u8(1), num(2, 4), str('ram'), num(0, 4), num(4, 4), num(N * L + 4, 8);
    for (let i = 0; i < N; i++) str(`b${i}`), num(L, 8);
    for (let i = 0; i < N; i++) num(2, 8), str(`b${i}`), u8(0);
    num(0x10, 8), u8(0x7e), num(2, 4);
    // RAM END (EOS, footer), then EOF: a stream reaching EOF with RAM still open is incomplete.
    u8(3), num(2, 4), num(0x10, 8), u8(0x7e), num(2, 4), u8(0);
    const f = path.join(dir, 'bomb.mig');
    fs.writeFileSync(f, Buffer.concat(parts));
    const before = process.memoryUsage().rss;
    const t0 = performance.now();
    const r = await runCli(['verify', f]);
    expect(r.code).toBe(3);
    const m = await MigrationFile.open(f);
    expect(m.blocks.length).toBe(N);
    await m.close();
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(process.memoryUsage().rss - before).toBeLessThan(1 << 30);
  });

  it('a few cases through the real bin/mram.js subprocess', async () => {
    buildCli();
    const fx = await getFixture('mr-32m');
    const g = await geometry(fx.file);
    const bench = new Workbench(fs.readFileSync(fx.file), dir, 'bin.mig');
    const mem = g.blocks.find((b) => b.id === 'mem')!;
    const cases: Array<[Case, number]> = [
      [{ name: 'magic', patches: [{ at: 0, bytes: [0] }], mustDetect: true }, 1],
      [{ name: 'short', truncate: mem.pagesOffset + mem.present.at(-1)! * 4096, mustDetect: true }, 2],
      [{ name: 'huge pages offset', patches: [{ at: mem.headerOffset + 20, bytes: be64(0xffffffffffffffffn) }], mustDetect: true }, 2],
      [{ name: 'stale', patches: [{ at: mem.pagesOffset + mem.absent[0]! * 4096, bytes: [1] }], mustDetect: true }, 3],
    ];
    for (const [c, exit] of cases) {
      bench.apply(c);
      const r = runBin(['verify', bench.file]);
      expect(r.code, `${c.name}: ${r.stdout}${r.stderr}`).toBe(exit);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      bench.restore(c);
    }
    console.log(`[fuzz] ${results.cases} cases, ${results.detected} reported, slowest ${results.maxMs.toFixed(0)} ms, max rss ${(results.rssMax / 2 ** 20).toFixed(0)} MiB`);
  });
});
