/**
 * The report's plots as inline SVG strings (no dependencies, no script):
 * latency histograms on a log axis, cache hit-rate bars. Each plot has
 * labelled axes with units; legends are HTML next to the plot, never on
 * it. The activity and counter plots over virtual time are in
 * activity-plots.ts.
 */
import { esc, fmtNs, fmtPercent, fmtTick } from './format.ts';
import { logBins, stats, type HitRate } from './figures.ts';

export const FONT = 'font-family="system-ui,sans-serif"';
const BAR = '#4e79a7';

/** An `<svg>` element of the given size, scaling down with its container, with a title for screen readers. */
export function svgOpen(w: number, h: number, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" style="max-width:100%;height:auto" role="img" aria-label="${esc(title)}" ${FONT}><title>${esc(title)}</title>`;
}

export interface HistogramLabels {
  /** What the plot shows, for its title. */
  title: string;
  /** The x axis: the quantity, e.g. "service time per page-request group". */
  quantity: string;
  /** The y axis: what is counted, e.g. "groups". */
  counted: string;
}

/**
 * A latency histogram on a logarithmic time axis (4 bins a decade), with
 * each bar's count over it and the median and 99th percentile marked.
 */
export function histogramSvg(xs: readonly number[], labels: HistogramLabels): string {
  if (xs.length === 0) return `<p class="empty">${esc(labels.title)}: no samples in this run.</p>`;
  const h = logBins(xs);
  const W = 560;
  const H = 270;
  const m = { l: 58, r: 30, t: 44, b: 56 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const lx = (v: number) => m.l + ((Math.log10(v) - Math.log10(h.lo)) / (Math.log10(h.hi) - Math.log10(h.lo))) * pw;
  const maxC = Math.max(1, ...h.bins.map((b) => b.count));
  const y = (c: number) => m.t + ph - (c / maxC) * ph;
  const parts: string[] = [];
  // Decade grid and labels.
  for (let d = Math.round(Math.log10(h.lo)); d <= Math.round(Math.log10(h.hi)); d++) {
    const x = lx(10 ** d).toFixed(1);
    parts.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${m.t + ph}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${x}" y="${m.t + ph + 17}" font-size="13" text-anchor="middle">${esc(fmtTick(10 ** d))}</text>`);
  }
  for (const b of h.bins) {
    if (b.count === 0) continue;
    const x0 = lx(b.lo) + 1;
    const x1 = lx(b.hi) - 1;
    const top = Math.min(y(b.count), m.t + ph - 2);
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="${top.toFixed(1)}" width="${Math.max(2, x1 - x0).toFixed(1)}" height="${(m.t + ph - top).toFixed(1)}" fill="${BAR}"><title>${esc(`${fmtNs(b.lo)} to ${fmtNs(b.hi)}: ${b.count} ${labels.counted}`)}</title></rect>`,
      `<text x="${((x0 + x1) / 2).toFixed(1)}" y="${(top - 4).toFixed(1)}" font-size="12" text-anchor="middle" fill="#333">${b.count}</text>`,
    );
  }
  // Median and 99th percentile.
  const s = stats(xs);
  const marks = s.p50 === s.p99 ? [['p50 = p99', s.p50]] as const : ([['p50', s.p50], ['p99', s.p99]] as const);
  for (const [name, v] of marks) {
    if (v <= 0) continue;
    const x = lx(v).toFixed(1);
    parts.push(`<line x1="${x}" y1="18" x2="${x}" y2="${m.t + ph}" stroke="#c44" stroke-dasharray="3 3"/><text x="${x}" y="14" font-size="13" text-anchor="middle" fill="#c44">${esc(`${name} ${fmtNs(v)}`)}</text>`);
  }
  const yTicks = [...new Set([0, Math.round(maxC / 2), maxC])];
  const axes =
    `<line x1="${m.l}" y1="${m.t + ph}" x2="${m.l + pw}" y2="${m.t + ph}" stroke="#333"/>` +
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${m.t + ph}" stroke="#333"/>` +
    yTicks.map((c) => `<text x="${m.l - 6}" y="${(y(c) + 4).toFixed(1)}" font-size="13" text-anchor="end">${c}</text>`).join('') +
    `<text x="${m.l + pw / 2}" y="${H - 10}" font-size="13" text-anchor="middle">${esc(labels.quantity)} (virtual time, log scale)</text>` +
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" font-size="13" text-anchor="middle">${esc(labels.counted)}</text>`;
  const zeros = h.zeros > 0 ? `<p class="note">${h.zeros} sample(s) of 0 ns are not on the log axis.</p>` : '';
  return `${svgOpen(W, H, labels.title)}${axes}${parts.join('')}</svg>${zeros}`;
}

/** Horizontal bars of cache hit rates, with hits and lookups in words. */
export function hitRateSvg(rates: readonly HitRate[]): string {
  if (rates.length === 0) return '<p class="empty">No cache counters were bumped in this run.</p>';
  const row = 24;
  const W = 560;
  const lw = 150;
  const rw = 150;
  const pw = W - lw - rw;
  const H = 10 + rates.length * row + 24;
  const bars = rates
    .map((r, i) => {
      const yy = 6 + i * row;
      return (
        `<text x="${lw - 8}" y="${yy + 15}" font-size="13" text-anchor="end">${esc(r.cache)}</text>` +
        `<rect x="${lw}" y="${yy + 4}" width="${pw}" height="14" fill="#eee"/>` +
        `<rect x="${lw}" y="${yy + 4}" width="${(r.rate * pw).toFixed(1)}" height="14" fill="#59a14f"><title>${r.hits} hits, ${r.misses} misses</title></rect>` +
        `<text x="${lw + pw + 6}" y="${yy + 15}" font-size="13">${fmtPercent(r.rate)} of ${r.hits + r.misses}</text>`
      );
    })
    .join('');
  const axis = `<text x="${lw}" y="${H - 6}" font-size="13">0%</text><text x="${lw + pw}" y="${H - 6}" font-size="13" text-anchor="end">100% hits</text><text x="${lw + pw + 6}" y="${H - 6}" font-size="13">(lookups)</text>`;
  return `${svgOpen(W, H, 'cache hit rates')}${bars}${axis}</svg>`;
}
