// Hand-written SVG: horizontal bars (median throughput) with min–max whiskers, grouped by phase.
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * groups: [{ title, bars: [{ label, median, min, max, highlight }] }] — values in GB/s.
 * Returns an SVG document (string).
 */
export function barChart({ title, subtitle, unit = 'GB/s', groups }) {
  const W = 900;
  const labelW = 330;
  const plotW = W - labelW - 90;
  const barH = 18;
  const gap = 6;
  const groupGap = 30;
  const top = 70;
  const all = groups.flatMap((g) => g.bars.flatMap((b) => [b.max, b.median])).filter(Number.isFinite);
  const vmax = niceCeil(Math.max(...all, 0.1));
  const x = (v) => labelW + (plotW * Math.max(0, v)) / vmax;
  let y = top;
  const parts = [];
  for (const g of groups) {
    parts.push(`<text x="10" y="${y + 12}" class="group">${esc(g.title)}</text>`);
    y += 22;
    for (const b of g.bars) {
      const fill = b.highlight ? '#d9480f' : '#4c6ef5';
      if (Number.isFinite(b.median)) {
        parts.push(`<text x="${labelW - 8}" y="${y + barH - 5}" class="label" text-anchor="end">${esc(b.label)}</text>`);
        parts.push(`<rect x="${labelW}" y="${y}" width="${(x(b.median) - labelW).toFixed(1)}" height="${barH}" fill="${fill}" rx="2"><title>${esc(b.label)}: ${fmt(b.median)} ${unit} (min ${fmt(b.min)}, max ${fmt(b.max)})</title></rect>`);
        if (Number.isFinite(b.min) && Number.isFinite(b.max) && b.max > b.min) {
          const cy = y + barH / 2;
          parts.push(`<path d="M${x(b.min).toFixed(1)} ${cy}H${x(b.max).toFixed(1)}M${x(b.min).toFixed(1)} ${cy - 5}V${cy + 5}M${x(b.max).toFixed(1)} ${cy - 5}V${cy + 5}" class="whisker"/>`);
        }
        parts.push(`<text x="${(Math.max(x(b.median), x(b.max ?? 0)) + 6).toFixed(1)}" y="${y + barH - 5}" class="value">${fmt(b.median)}</text>`);
      } else {
        parts.push(`<text x="${labelW - 8}" y="${y + barH - 5}" class="label" text-anchor="end">${esc(b.label)}</text>`);
        parts.push(`<text x="${labelW + 4}" y="${y + barH - 5}" class="value">n/a</text>`);
      }
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  const axisY = y - groupGap + 10;
  const ticks = [];
  for (let i = 0; i <= 5; i++) {
    const v = (vmax * i) / 5;
    const tx = x(v).toFixed(1);
    ticks.push(`<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${axisY}" class="grid"/>`);
    ticks.push(`<text x="${tx}" y="${axisY + 16}" class="tick" text-anchor="middle">${fmt(v)}</text>`);
  }
  const H = axisY + 50;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">
<style>
.title{font-size:17px;font-weight:bold}.sub{font-size:12px;fill:#555}.group{font-size:14px;font-weight:bold}
.label{font-size:12px}.value{font-size:11px;fill:#222}.tick{font-size:11px;fill:#555}
.grid{stroke:#ddd;stroke-width:1}.whisker{stroke:#111;stroke-width:1.2;fill:none}
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="24" class="title">${esc(title)}</text>
<text x="10" y="44" class="sub">${esc(subtitle ?? '')}</text>
${ticks.join('\n')}
${parts.join('\n')}
<text x="${labelW + plotW / 2}" y="${axisY + 36}" class="tick" text-anchor="middle">${esc(unit)} (bar: median; whisker: min–max over runs; orange: mram)</text>
</svg>
`;
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function fmt(v) {
  if (!Number.isFinite(v)) return 'n/a';
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
