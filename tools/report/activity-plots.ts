/**
 * Plots over virtual time, all on one collapsed axis (time-axis.ts) so a
 * 10 ms timeout does not hide the microseconds of work around it: the
 * activity plot (descriptors as spans, then faults, page requests,
 * invalidations and injections as ticks, then queue occupancy) and the
 * counters plot (one row per counter, a step line from its samples).
 */
import { esc, fmtNs, fmtTime } from './format.ts';
import type { DescriptorSpan, OccupancySeries, TimelineEvent } from './figures.ts';
import { svgOpen } from './plots.ts';
import { collapsedTimeAxis, niceTicks, type TimeAxis } from './time-axis.ts';

/** Width of the plots over time; the label column and the value column on each side. */
export const TIME_W = 1100;
const LABEL_W = 230;
const VALUE_W = 70;
const PLOT_W = TIME_W - LABEL_W - VALUE_W;
const AXIS_H = 52;

export const SERIES_COLORS = ['#e15759', '#4e79a7', '#59a14f', '#f28e2b', '#b07aa1', '#76b7b2', '#9c755f', '#edc948'];
const KIND_COLOR: Record<TimelineEvent['kind'], string> = { fault: '#e15759', invalidation: '#4e79a7', 'page-request': '#f28e2b', injection: '#b07aa1' };
const KIND_LABEL: Record<TimelineEvent['kind'], string> = { injection: 'injected faults', fault: 'faults and errors', 'page-request': 'page requests', invalidation: 'invalidations' };

/** The collapsed axis of one run, from every traced time. */
export function runAxis(times: readonly number[], endNs: number): TimeAxis {
  return collapsedTimeAxis(times, endNs, PLOT_W, { gapWidth: 64 });
}

/** Grey bands over the collapsed stretches, from `top` to `bottom`. */
function gapBands(axis: TimeAxis, top: number, bottom: number): string {
  return axis.gaps
    .map((g) => `<rect x="${(LABEL_W + g.x0).toFixed(1)}" y="${top}" width="${(g.x1 - g.x0).toFixed(1)}" height="${bottom - top}" fill="#f1f1f1"><title>${esc(`${fmtNs(g.to - g.from)} with nothing traced (collapsed)`)}</title></rect>`)
    .join('');
}

/** The time axis at `y`: round ticks in each drawn stretch, each collapsed stretch marked with its length. */
function axisSvg(axis: TimeAxis, y: number): string {
  const out: string[] = [`<line x1="${LABEL_W}" y1="${y}" x2="${LABEL_W + PLOT_W}" y2="${y}" stroke="#333"/>`];
  for (const p of axis.pieces) {
    const n = Math.max(1, Math.floor((p.x1 - p.x0) / 120));
    // At least two ticks in a stretch wide enough for them, so its scale reads.
    let ticks = p.to > p.from ? niceTicks(p.from, p.to, n) : [p.from];
    if (ticks.length < 2 && p.x1 - p.x0 >= 200 && p.to > p.from) ticks = niceTicks(p.from, p.to, 2 * n + 1);
    const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : Math.max(1, p.to - p.from);
    for (const t of ticks) {
      const x = (LABEL_W + axis.x(t)).toFixed(1);
      out.push(`<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 5}" stroke="#333"/><text x="${x}" y="${y + 18}" font-size="13" text-anchor="middle">${esc(fmtTime(t, step))}</text>`);
    }
  }
  for (const g of axis.gaps) {
    const cx = LABEL_W + (g.x0 + g.x1) / 2;
    out.push(
      `<rect x="${(LABEL_W + g.x0 + 6).toFixed(1)}" y="${y - 4}" width="${(g.x1 - g.x0 - 12).toFixed(1)}" height="8" fill="#fff"/>`,
      `<path d="M${(LABEL_W + g.x0 + 4).toFixed(1)},${y + 5} l6,-10 M${(LABEL_W + g.x1 - 10).toFixed(1)},${y + 5} l6,-10" stroke="#333"/>`,
      `<text x="${cx.toFixed(1)}" y="${y + 34}" font-size="12" text-anchor="middle" fill="#666">${esc(`${fmtNs(g.to - g.from)} idle`)}</text>`,
    );
  }
  return out.join('');
}

/** The axis title under the plot. */
function axisTitle(axis: TimeAxis, y: number): string {
  const note = axis.gaps.length > 0 ? ' (grey: idle stretches collapsed)' : '';
  return `<text x="${LABEL_W + PLOT_W / 2}" y="${y}" font-size="13" text-anchor="middle">virtual time${note}</text>`;
}

export interface ActivityInput {
  axis: TimeAxis;
  descriptors: readonly DescriptorSpan[];
  events: readonly TimelineEvent[];
  occupancy: readonly OccupancySeries[];
  endNs: number;
}

/**
 * What happened when: a lane of spans per device's descriptors, a lane of
 * ticks per event kind, and the queues' occupancy as step lines, over the
 * collapsed time axis. Its legend is HTML (activityLegend).
 */
export function activitySvg(a: ActivityInput): string {
  if (a.descriptors.length === 0 && a.events.length === 0 && a.occupancy.length === 0) return '<p class="empty">No descriptors, faults, page requests or invalidations were traced in this run.</p>';
  const lane = 26;
  const x = (t: number) => (LABEL_W + a.axis.x(t)).toFixed(1);
  const rows: string[] = [];
  let yy = 8;
  const devs = [...new Set(a.descriptors.map((d) => d.dev))];
  for (const dev of devs) {
    rows.push(`<text x="${LABEL_W - 8}" y="${yy + 17}" font-size="13" text-anchor="end">${esc(dev)} descriptors</text>`);
    for (const d of a.descriptors.filter((s) => s.dev === dev)) {
      const x0 = LABEL_W + a.axis.x(d.start);
      const w = Math.max(3, LABEL_W + a.axis.x(d.end) - x0);
      const ok = d.status === 'SUCCESS';
      rows.push(`<rect x="${x0.toFixed(1)}" y="${yy + 5}" width="${w.toFixed(1)}" height="${lane - 10}" fill="${ok ? '#59a14f' : '#e15759'}" fill-opacity="0.8"><title>${esc(`${dev}: ${d.status}, ${fmtNs(d.end - d.start)} from ${fmtTime(d.start)}`)}</title></rect>`);
    }
    yy += lane;
  }
  const kinds = (['injection', 'fault', 'page-request', 'invalidation'] as const).filter((k) => a.events.some((e) => e.kind === k));
  for (const k of kinds) {
    rows.push(`<text x="${LABEL_W - 8}" y="${yy + 17}" font-size="13" text-anchor="end">${KIND_LABEL[k]}</text><line x1="${LABEL_W}" y1="${yy + lane - 3}" x2="${LABEL_W + PLOT_W}" y2="${yy + lane - 3}" stroke="#ddd"/>`);
    for (const e of a.events.filter((ev) => ev.kind === k)) rows.push(`<line x1="${x(e.ns)}" y1="${yy + 4}" x2="${x(e.ns)}" y2="${yy + lane - 4}" stroke="${KIND_COLOR[k]}" stroke-width="1.5"><title>${esc(`${fmtTime(e.ns)} ${e.name} (${e.source})`)}</title></line>`);
    yy += lane;
  }
  // Occupancy: a small panel per queue (overlaid step lines would hide each other), on one scale.
  const maxV = Math.max(1, ...a.occupancy.flatMap((s) => s.points.map((p) => p[1])));
  a.occupancy.forEach((s, i) => {
    const ph = 34;
    const top = yy + 8;
    const y = (v: number) => (top + ph - (v / maxV) * ph).toFixed(1);
    const color = SERIES_COLORS[i % SERIES_COLORS.length]!;
    let d = `M${x(0)},${y(0)}`;
    let last = 0;
    for (const [t, v] of s.points) {
      d += ` H${x(t)} V${y(v)}`;
      last = v;
    }
    d += ` H${x(a.endNs)} V${y(last)}`;
    const lines = wrapLabel(s.name, 30);
    rows.push(
      lines.map((l, k) => `<text x="${LABEL_W - 30}" y="${top + ph / 2 + 5 + (k - (lines.length - 1) / 2) * 15}" font-size="13" text-anchor="end">${esc(l)}</text>`).join(''),
      `<text x="${LABEL_W - 6}" y="${top + 9}" font-size="12" text-anchor="end" fill="#666">${maxV}</text><text x="${LABEL_W - 6}" y="${top + ph + 4}" font-size="12" text-anchor="end" fill="#666">0</text>`,
      `<line x1="${LABEL_W}" y1="${top}" x2="${LABEL_W}" y2="${top + ph}" stroke="#999"/><line x1="${LABEL_W}" y1="${top + ph}" x2="${LABEL_W + PLOT_W}" y2="${top + ph}" stroke="#ddd"/>`,
      `<path d="${d} V${y(0)} Z" fill="${color}" fill-opacity="0.15" stroke="none"/><path d="${d}" fill="none" stroke="${color}" stroke-width="2"><title>${esc(s.name)}</title></path>`,
    );
    yy = top + ph;
  });
  const H = yy + 8 + AXIS_H;
  return `${svgOpen(TIME_W, H, 'activity over virtual time')}${gapBands(a.axis, 4, yy + 4)}${rows.join('')}${axisSvg(a.axis, yy + 8)}${axisTitle(a.axis, H - 4)}</svg>`;
}

/** The legend of the activity plot, as HTML under it. */
export function activityLegend(a: ActivityInput): string {
  const items: string[] = [];
  if (a.descriptors.length > 0) items.push(swatch('#59a14f', 'descriptor (SUCCESS)'), swatch('#e15759', 'descriptor (error or PAGE_FAULT)'));
  return items.length > 0 ? `<div class="legend">${items.join('')}</div>` : '';
}

const swatch = (color: string, label: string) => `<span><i style="background:${color}"></i>${esc(label)}</span>`;

/** Words of `s` in lines of at most `width` characters. */
export function wrapLabel(s: string, width: number): string[] {
  const out: string[] = [];
  for (const w of s.split(' ')) {
    const last = out[out.length - 1];
    if (last !== undefined && last.length + 1 + w.length <= width) out[out.length - 1] = `${last} ${w}`;
    else out.push(w);
  }
  return out;
}

/**
 * Counters over virtual time: one row per counter, a step line between its
 * smallest and largest value, with the last value on the right.
 */
export function countersSvg(series: readonly [string, [number, number][]][], axis: TimeAxis, endNs: number): string {
  if (series.length === 0) return '<p class="empty">No counter changed during the run.</p>';
  const row = 28;
  const x = (t: number) => (LABEL_W + axis.x(t)).toFixed(1);
  const rows = series.map(([name, pts], i) => {
    const top = 6 + i * row;
    const lo = Math.min(...pts.map((p) => p[1]));
    const hi = Math.max(...pts.map((p) => p[1]));
    const y = (v: number) => (top + row - 6 - (hi === lo ? 0 : ((v - lo) / (hi - lo)) * (row - 10))).toFixed(1);
    let d = `M${x(pts[0]![0])},${y(pts[0]![1])}`;
    for (const [t, v] of pts.slice(1)) d += ` H${x(t)} V${y(v)}`;
    d += ` H${x(endNs)}`;
    const last = pts[pts.length - 1]![1];
    return (
      `<line x1="${LABEL_W}" y1="${top + row - 2}" x2="${LABEL_W + PLOT_W}" y2="${top + row - 2}" stroke="#eee"/>` +
      `<text x="${LABEL_W - 8}" y="${top + 17}" font-size="13" text-anchor="end">${esc(name)}</text>` +
      `<path d="${d}" fill="none" stroke="#4e79a7" stroke-width="1.5"><title>${esc(`${name}: ${lo} to ${hi}`)}</title></path>` +
      `<text x="${LABEL_W + PLOT_W + 8}" y="${top + 17}" font-size="13">${last}</text>`
    );
  });
  const bottom = 6 + series.length * row;
  const H = bottom + 4 + AXIS_H;
  return `${svgOpen(TIME_W, H, 'counters over virtual time')}${gapBands(axis, 4, bottom)}${rows.join('')}${axisSvg(axis, bottom + 4)}${axisTitle(axis, H - 4)}</svg>`;
}

/** Counters worth a row first: the PRI loop, caches, walks, DMA; then the rest by name. */
const COUNTER_ORDER = [/pri\.requests$|iopf\.requests$/, /\.atc\.(hit|miss)$/, /\.iotlb\.(hit|miss)$/, /\.walks$/, /descriptors$/, /dma\.transactions$/, /invalidat/, /prq|priq/];

/** The counters that changed during the run, the most telling first. */
export function changingCounters(all: ReadonlyMap<string, [number, number][]>): [string, [number, number][]][] {
  const rank = (n: string) => {
    const i = COUNTER_ORDER.findIndex((re) => re.test(n));
    return i < 0 ? COUNTER_ORDER.length : i;
  };
  return [...all.entries()].filter(([, pts]) => new Set(pts.map((p) => p[1])).size > 1).sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]));
}
