import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bandGeometry, countBits, LEVELS, renderSvg, SVG_LAYOUT, type BlockMapInput } from '../../src/map/index.js';
import { MigrationFile } from '../../src/index.js';
import { getFixture, REPO_ROOT, type Fixture } from '../support/fixtures.js';
import { runBin, runCli } from '../support/cli.js';
import { mulberry32 as prng } from '../support/random.js';
import { decodePng } from '../support/png.js';

const tmp = fs.mkdtempSync(path.join(tmpdir(), 'mram-map-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SAMPLE = path.join(REPO_ROOT, 'samples/guest-8m.mig');
const PAGE = 4096;

interface Rect {
  cls: string;
  x: number;
  y: number;
  width: number;
  height: number;
  opacity: number;
}

function rectsOf(svg: string): Rect[] {
  return [...svg.matchAll(/<rect class="([pr])" x="([\d.]+)" y="(\d+)" width="([\d.]+)" height="(\d+)"(?: fill-opacity="([\d.]+)")?\/>/g)].map((m) => ({
    cls: m[1]!,
    x: Number(m[2]),
    y: Number(m[3]),
    width: Number(m[4]),
    height: Number(m[5]),
    opacity: m[6] === undefined ? 1 : Number(m[6]),
  }));
}

/** Page ranges a band's rects of one class claim, read back from the drawing's coordinates. */
function pageRuns(rects: Rect[], pages: number): { start: number; count: number; level: number }[] {
  const toPage = (x: number) => Math.round(((x - SVG_LAYOUT.margin) / SVG_LAYOUT.barWidth) * pages);
  return rects.map((r) => ({ start: toPage(r.x), count: toPage(r.x + r.width) - toPage(r.x), level: Math.round(r.opacity * LEVELS) }));
}

function xmlWellFormed(file: string): void {
  const r = spawnSync('xmllint', ['--noout', file], { encoding: 'utf8' });
  expect(r.error, 'xmllint (libxml2-utils) is needed').toBeUndefined();
  expect(r.status, r.stderr).toBe(0);
}

function nonZeroPages(image: Uint8Array): Uint8Array {
  const bits = new Uint8Array(Math.ceil(image.length / PAGE / 8));
  for (let p = 0; p < image.length / PAGE; p++) if (image.subarray(p * PAGE, (p + 1) * PAGE).some((v) => v !== 0)) bits[p >> 3]! |= 1 << (p & 7);
  return bits;
}

describe('map: geometry', () => {
  it('countBits matches a bit-by-bit count on any range', () => {
    const rnd = prng(5);
    const bits = Uint8Array.from({ length: 64 }, () => Math.floor(rnd() * 256));
    for (let k = 0; k < 300; k++) {
      const a = Math.floor(rnd() * 512);
      const b = a + Math.floor(rnd() * (512 - a));
      let n = 0;
      for (let p = a; p < b; p++) n += (bits[p >> 3]! >> (p & 7)) & 1;
      expect(countBits(bits, a, b)).toBe(n);
    }
  });

  it('a 1 TiB guest with a scattered bitmap gives a small SVG: pages are aggregated into pixels', () => {
    const pages = 2 ** 28;
    const present = new Uint8Array(pages / 8);
    const rnd = prng(9);
    // Dense, sparse and empty stretches, so the picture has every level.
    for (let i = 0; i < present.length; i += 4096) {
      const kind = Math.floor(rnd() * 3);
      if (kind === 0) present.fill(0xff, i, i + 4096);
      else if (kind === 1) for (let j = i; j < i + 4096; j += 1 + Math.floor(rnd() * 40)) present[j] = 1 << Math.floor(rnd() * 8);
    }
    const resent = new Uint8Array(pages / 8);
    for (let j = 0; j < 1000; j++) resent[Math.floor(rnd() * resent.length)] = 0x10;
    const b: BlockMapInput = { id: 'pc.ram', usedLength: pages * PAGE, pageSize: PAGE, pages, present, resent, ignored: false };
    const band = bandGeometry(b, SVG_LAYOUT.barWidth);
    expect(band.presentPages).toBe(countBits(present, 0, pages));
    const svg = renderSvg([band], 'huge');
    expect(svg.length).toBeLessThan(200_000);
    expect(svg).toContain('1.00 TiB');
    const rects = rectsOf(svg);
    expect(rects.filter((r) => r.cls === 'p').length).toBeLessThanOrEqual(SVG_LAYOUT.barWidth);
    expect(rects.filter((r) => r.cls === 'r').length).toBeGreaterThan(0);
    const file = path.join(tmp, 'huge.svg');
    fs.writeFileSync(file, svg);
    xmlWellFormed(file);
  });

  it('a hostile block name is escaped; an ignored block is drawn as such', () => {
    const name = 'a<b>&"c\'\u001b[31m';
    const svg = renderSvg(
      [
        bandGeometry({ id: name, usedLength: 8 * PAGE, pageSize: PAGE, pages: 8, present: Uint8Array.of(0x0f), resent: null, ignored: false }, 800),
        bandGeometry({ id: 'shared', usedLength: 8 * PAGE, pageSize: PAGE, pages: 8, present: null, resent: null, ignored: true }, 800),
      ],
      'hostile',
    );
    expect(svg).not.toContain('\u001b');
    expect(svg).toContain('a&#60;b&#62;&#38;&#34;c&#39;\\x1b[31m');
    expect(svg).toMatch(/<rect fill="url\(#ignored\)" x="16" y="\d+" width="800"/);
    expect(svg).toContain('ignored: its RAM is not in the file');
    const file = path.join(tmp, 'hostile.svg');
    fs.writeFileSync(file, svg);
    xmlWellFormed(file);
  });
});

describe('map: real files', () => {
  let mr: Fixture;
  let live: Fixture;
  beforeAll(async () => {
    [mr, live] = await Promise.all([getFixture('mr-32m'), getFixture('stream-live-32m')]);
  });

  it("the bands' runs match the non-zero pages of QEMU's RAM image, page for page", async () => {
    const out = path.join(tmp, 'mr.svg');
    const r = await runCli(['map', mr.file, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    xmlWellFormed(out);
    const svg = fs.readFileSync(out, 'utf8');
    const f = await MigrationFile.open(mr.file);
    const ids = f.blocks.map((b) => b.id);
    await f.close();
    expect([...svg.matchAll(/<g><title>([^<]*)<\/title>/g)].map((m) => m[1])).toEqual(ids);
    // The mem band: the first bar of the picture.
    const pages = (mr.meta.memMiB << 20) / PAGE;
    const expected = nonZeroPages(fs.readFileSync(mr.ramImage));
    const barY = Math.min(...rectsOf(svg).map((x) => x.y));
    const runs = pageRuns(rectsOf(svg).filter((x) => x.cls === 'p' && x.y === barY), pages);
    let covered = 0;
    let prevEnd = 0;
    for (const run of runs) {
      expect(run.start).toBeGreaterThanOrEqual(prevEnd);
      expect(countBits(expected, prevEnd, run.start), `gap before page ${run.start}`).toBe(0);
      const set = countBits(expected, run.start, run.start + run.count);
      if (run.level === LEVELS) expect(set).toBe(run.count);
      else {
        expect(set).toBeGreaterThan(0);
        expect(set).toBeLessThan(run.count);
      }
      covered += set;
      prevEnd = run.start + run.count;
    }
    expect(countBits(expected, prevEnd, pages)).toBe(0);
    expect(covered).toBe(mr.meta.ramNonZeroPages);
    expect(svg).toContain(`${((100 * mr.meta.ramNonZeroPages) / pages).toFixed(1)}% present`);
  });

  it('a live stream save shows the pages it sent more than once, in the range the guest dirtied', async () => {
    const r = runBin(['map', live.file, '-o', '-']);
    expect(r.code, r.stderr).toBe(0);
    const resent = rectsOf(r.stdout).filter((x) => x.cls === 'r');
    expect(resent.length).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/pages sent more than once/);
    // The boot-sector loop dirties 0x10000-0x9ffff of the first block (mem).
    const memY = Math.min(...resent.map((x) => x.y));
    const runs = pageRuns(resent.filter((x) => x.y === memY), 8192);
    expect(runs.some((x) => x.start < 0xa0000 / PAGE && x.start + x.count > 0x10000 / PAGE)).toBe(true);
  });

  it('refuses to overwrite without --force, never writes over its input, leaves no temporary file', async () => {
    const out = path.join(tmp, 'exists.svg');
    fs.writeFileSync(out, 'keep');
    expect((await runCli(['map', SAMPLE, '-o', out])).code).toBe(64);
    expect(fs.readFileSync(out, 'utf8')).toBe('keep');
    const copy = path.join(tmp, 'in.mig');
    fs.copyFileSync(SAMPLE, copy);
    const same = await runCli(['map', copy, '-o', copy, '--force']);
    expect(same.code).toBe(64);
    expect(same.stderr).toContain('is the input file');
    expect(fs.readFileSync(copy).equals(fs.readFileSync(SAMPLE))).toBe(true);
    expect((await runCli(['map', path.join(tmp, 'missing.mig'), '-o', path.join(tmp, 'x.svg')])).code).toBe(1);
    expect(fs.readdirSync(tmp).filter((n) => n.includes('mram-tmp'))).toEqual([]);
  });
});

describe('map: what a browser draws', () => {
  const chromium = ['chromium', 'chromium-browser'].find((c) => spawnSync(c, ['--version']).status === 0);

  it('headless Chromium renders a non-blank picture with one band per RAM block', async () => {
    expect(chromium, 'headless Chromium is needed (Debian package chromium)').toBeDefined();
    const svg = path.join(tmp, 'sample.svg');
    expect((await runCli(['map', SAMPLE, '-o', svg])).code).toBe(0);
    const text = fs.readFileSync(svg, 'utf8');
    const [, w, h] = /width="(\d+)" height="(\d+)"/.exec(text)!;
    const png = path.join(tmp, 'sample.png');
    const r = spawnSync(
      chromium!,
      ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--force-device-scale-factor=1', `--window-size=${w},${h}`, `--screenshot=${png}`, `file://${svg}`],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(fs.existsSync(png), r.stderr).toBe(true);
    const img = decodePng(fs.readFileSync(png));
    const dark = (x: number, y: number) => {
      const i = (y * img.width + x) * 4;
      return img.pixels[i]! < 245 || img.pixels[i + 1]! < 245 || img.pixels[i + 2]! < 245;
    };
    let inked = 0;
    for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) if (dark(x, y)) inked++;
    expect(inked / (img.width * img.height)).toBeGreaterThan(0.05);
    // Bars are the only things at least barHeight-4 pixels tall in the column just inside their left edge.
    const x = SVG_LAYOUT.margin + 2;
    let bands = 0;
    let run = 0;
    for (let y = 0; y <= img.height; y++) {
      if (y < img.height && dark(x, y)) run++;
      else {
        if (run >= SVG_LAYOUT.barHeight - 4) bands++;
        run = 0;
      }
    }
    const f = await MigrationFile.open(SAMPLE);
    expect(bands).toBe(f.blocks.length);
    await f.close();
  }, 180_000);
});

describe('inspect: occupancy bars', () => {
  it('a terminal gets one bar per block; a pipe and --json do not', () => {
    const cmd = `node ${path.join(REPO_ROOT, 'bin/mram.js')} inspect ${SAMPLE}`;
    const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8' });
    expect(tty.status, tty.stderr).toBe(0);
    const bars = tty.stdout.split(/\r?\n/).filter((l) => l.includes('▕'));
    expect(bars).toHaveLength(6);
    expect(bars.find((l) => l.trimStart().startsWith('/rom@etc/table-loader'))).toMatch(/▕█{48}▏/);
    expect(bars.find((l) => l.trimStart().startsWith('pc.rom '))).toMatch(/▕ {48}▏/);
    const json = spawnSync('script', ['-qec', `${cmd} --json`, '/dev/null'], { encoding: 'utf8' });
    expect(json.stdout).not.toMatch(/[▕▁▂▃▄▅▆▇█]/);
    const piped = runBin(['inspect', SAMPLE]);
    expect(piped.code).toBe(0);
    expect(piped.stdout).not.toMatch(/[▕▁▂▃▄▅▆▇█]/);
  });
});
