// Pure: bands → one self-contained SVG document (no scripts, fonts or external references).
import { escapeControl } from '../format/escape.js';
import { humanBytes } from '../format/units.js';
import { LEVELS, type Band, type Segment } from './geometry.js';

/** Geometry of the picture, shared with tests that measure a rendering of it. */
export const SVG_LAYOUT = {
  margin: 16,
  /** Width of every block's bar: each band is to scale within itself. */
  barWidth: 800,
  labelHeight: 18,
  barHeight: 22,
  resentHeight: 6,
  gap: 14,
  legendHeight: 40,
} as const;

/** Paint of each class (present, zero/absent, re-sent, ignored) and of the text. */
export const COLORS = { present: '#2563eb', zero: '#e5e7eb', resent: '#ea580c', ignored: '#9ca3af', ignoredStripe: '#4b5563', text: '#111827' } as const;

/** Text safe inside XML character data and attributes; control characters shown as escapes. */
export function escapeXml(s: string): string {
  return escapeControl(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const num = (v: number) => String(Math.round(v * 1000) / 1000);

function rects(segs: Segment[], pages: number, y: number, height: number, cls: string): string[] {
  const L = SVG_LAYOUT;
  const out: string[] = [];
  for (const s of segs) {
    if (s.level === 0) continue;
    const x = L.margin + (s.start / pages) * L.barWidth;
    const w = (s.count / pages) * L.barWidth;
    const op = s.level === LEVELS ? '' : ` fill-opacity="${num(s.level / LEVELS)}"`;
    out.push(`<rect class="${cls}" x="${num(x)}" y="${y}" width="${num(w)}" height="${height}"${op}/>`);
  }
  return out;
}

/** Height of a band: label, bar, resent strip, gap. */
export const BAND_HEIGHT = SVG_LAYOUT.labelHeight + SVG_LAYOUT.barHeight + SVG_LAYOUT.resentHeight + SVG_LAYOUT.gap;

/** The whole picture: a title, one band per block (name, size, fill %), a legend. */
export function renderSvg(bands: Band[], title: string): string {
  const L = SVG_LAYOUT;
  const width = 2 * L.margin + L.barWidth;
  const top = L.margin + 20;
  const height = top + bands.length * BAND_HEIGHT + L.legendHeight + L.margin;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<style>.p{fill:${COLORS.present}}.r{fill:${COLORS.resent}}.z{fill:${COLORS.zero}}text{fill:${COLORS.text}}</style>`,
    `<defs><pattern id="ignored" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="${COLORS.ignored}"/><rect width="2" height="6" fill="${COLORS.ignoredStripe}"/></pattern></defs>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${L.margin}" y="${L.margin + 8}" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  bands.forEach((b, i) => {
    const y = top + i * BAND_HEIGHT;
    const barY = y + L.labelHeight;
    const pct = b.pages ? ((100 * b.presentPages) / b.pages).toFixed(1) : '0.0';
    const fill = b.ignored ? 'ignored: its RAM is not in the file' : `${pct}% present${b.resentPages ? `, ${b.resentPages} pages sent more than once` : ''}`;
    out.push(`<g><title>${escapeXml(b.id)}</title>`);
    out.push(`<text x="${L.margin}" y="${y + 13}"><tspan font-weight="bold">${escapeXml(b.id)}</tspan>  ${humanBytes(b.usedLength)}, ${b.pages} page${b.pages === 1 ? '' : 's'}, ${fill}</text>`);
    out.push(`<rect ${b.ignored ? 'fill="url(#ignored)"' : 'class="z"'} x="${L.margin}" y="${barY}" width="${L.barWidth}" height="${L.barHeight}"/>`);
    out.push(...rects(b.present, b.pages, barY, L.barHeight, 'p'));
    out.push(...rects(b.resent, b.pages, barY + L.barHeight, L.resentHeight, 'r'));
    out.push('</g>');
  });
  const ly = top + bands.length * BAND_HEIGHT + 8;
  const legend: [string, string][] = [
    ['class="p"', 'present'],
    ['class="z"', 'zero / absent'],
    ['class="r"', 'sent more than once (streams)'],
    ['fill="url(#ignored)"', 'ignored block'],
  ];
  let x = L.margin;
  for (const [paint, label] of legend) {
    out.push(`<rect ${paint} x="${x}" y="${ly}" width="12" height="12"/><text x="${x + 16}" y="${ly + 10}">${label}</text>`);
    x += 28 + label.length * 6.5;
  }
  out.push(`<text x="${L.margin}" y="${ly + 28}" fill-opacity="0.7">Each bar is one RAM block to scale; a lighter shade is a share of present pages where a pixel covers several pages.</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
