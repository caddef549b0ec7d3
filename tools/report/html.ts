/**
 * The HTML report of one run (`ioemu run --report out.html`): one
 * self-contained file, plots as inline SVG drawn here (no dependencies).
 * Sections: summary and scenario metrics; page-fault service time histogram
 * (at the device, figures.ts priServiceTimes); descriptor latency histogram (trace durations);
 * queue occupancy over time (from the trace); cache hit rates (counters);
 * the fault / invalidation / page-request timeline (trace events).
 */
import type { RunResult } from '../scenario/scenario.ts';
import { descriptorLatencies, hitRates, occupancy, stats, threadNames, timeline, type OccupancySeries, type Stats, type TimelineEvent } from './figures.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A readable duration for virtual ns. */
export function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(ns >= 1e7 ? 1 : 2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(ns >= 1e4 ? 1 : 2)} us`;
  return `${Math.round(ns)} ns`;
}

const W = 640;
const H = 220;
const M = { l: 56, r: 16, t: 16, b: 40 };

/** A histogram of `xs` in `bins` equal-width bins, as an SVG element. */
export function histogramSvg(xs: readonly number[], title: string, bins = 20): string {
  if (xs.length === 0) return `<p class="empty">${esc(title)}: no samples in this run.</p>`;
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const n = lo === hi ? 1 : bins;
  const width = lo === hi ? 1 : (hi - lo) / n;
  const counts = new Array<number>(n).fill(0);
  for (const x of xs) counts[Math.min(n - 1, Math.floor((x - lo) / width))]!++;
  const maxC = Math.max(...counts);
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const bw = pw / n;
  const bars = counts
    .map((c, i) => {
      const h = (c / maxC) * ph;
      const from = lo + i * width;
      return `<rect x="${(M.l + i * bw + 1).toFixed(1)}" y="${(M.t + ph - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#4e79a7"><title>${esc(`${fmtNs(from)} .. ${fmtNs(from + width)}: ${c}`)}</title></rect>`;
    })
    .join('');
  const axis =
    `<line x1="${M.l}" y1="${M.t + ph}" x2="${M.l + pw}" y2="${M.t + ph}" stroke="#333"/>` +
    `<line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${M.t + ph}" stroke="#333"/>` +
    `<text x="${M.l}" y="${H - 22}" font-size="11">${esc(fmtNs(lo))}</text>` +
    `<text x="${M.l + pw}" y="${H - 22}" font-size="11" text-anchor="end">${esc(fmtNs(lo === hi ? hi : hi))}</text>` +
    `<text x="${M.l + pw / 2}" y="${H - 6}" font-size="11" text-anchor="middle">virtual time</text>` +
    `<text x="${M.l - 6}" y="${M.t + 10}" font-size="11" text-anchor="end">${maxC}</text>` +
    `<text x="${M.l - 6}" y="${M.t + ph}" font-size="11" text-anchor="end">0</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}"><title>${esc(title)}</title>${axis}${bars}</svg>`;
}

const COLORS = ['#e15759', '#4e79a7', '#59a14f', '#f28e2b', '#b07aa1', '#76b7b2'];

/** Step plots of occupancy series over virtual time, as one SVG. */
export function occupancySvg(series: readonly OccupancySeries[], endNs: number): string {
  if (series.length === 0) return '<p class="empty">No queue activity was traced in this run.</p>';
  const maxV = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const maxT = Math.max(1, endNs, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const x = (t: number) => (M.l + (t / maxT) * pw).toFixed(1);
  const y = (v: number) => (M.t + ph - (v / maxV) * ph).toFixed(1);
  const paths = series
    .map((s, i) => {
      let d = `M${x(0)},${y(0)}`;
      let last = 0;
      for (const [t, v] of s.points) {
        d += ` H${x(t)} V${y(v)}`;
        last = v;
      }
      d += ` H${x(maxT)} V${y(last)}`;
      return `<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5"><title>${esc(s.name)}</title></path>`;
    })
    .join('');
  const legend = series.map((s, i) => `<text x="${M.l + 8}" y="${M.t + 12 + 13 * i}" font-size="11" fill="${COLORS[i % COLORS.length]}">${esc(s.name)}</text>`).join('');
  const axis =
    `<line x1="${M.l}" y1="${M.t + ph}" x2="${M.l + pw}" y2="${M.t + ph}" stroke="#333"/>` +
    `<line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${M.t + ph}" stroke="#333"/>` +
    `<text x="${M.l}" y="${H - 22}" font-size="11">0</text>` +
    `<text x="${M.l + pw}" y="${H - 22}" font-size="11" text-anchor="end">${esc(fmtNs(maxT))}</text>` +
    `<text x="${M.l + pw / 2}" y="${H - 6}" font-size="11" text-anchor="middle">virtual time</text>` +
    `<text x="${M.l - 6}" y="${M.t + 10}" font-size="11" text-anchor="end">${maxV}</text>` +
    `<text x="${M.l - 6}" y="${M.t + ph}" font-size="11" text-anchor="end">0</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="queue occupancy"><title>queue occupancy</title>${axis}${paths}${legend}</svg>`;
}

/** Horizontal bars of hit rates, as one SVG. */
export function hitRateSvg(rates: ReturnType<typeof hitRates>): string {
  if (rates.length === 0) return '<p class="empty">No cache counters were bumped in this run.</p>';
  const row = 22;
  const h = M.t + rates.length * row + 8;
  const lw = 200;
  const pw = W - lw - 80;
  const bars = rates
    .map((r, i) => {
      const yy = M.t + i * row;
      return (
        `<text x="${lw - 8}" y="${yy + 14}" font-size="12" text-anchor="end">${esc(r.cache)}</text>` +
        `<rect x="${lw}" y="${yy + 3}" width="${pw}" height="14" fill="#eee"/>` +
        `<rect x="${lw}" y="${yy + 3}" width="${(r.rate * pw).toFixed(1)}" height="14" fill="#59a14f"><title>${r.hits} hits, ${r.misses} misses</title></rect>` +
        `<text x="${lw + pw + 6}" y="${yy + 14}" font-size="12">${(r.rate * 100).toFixed(1)}%</text>`
      );
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" role="img" aria-label="cache hit rates"><title>cache hit rates</title>${bars}</svg>`;
}

const KIND_COLOR: Record<TimelineEvent['kind'], string> = { fault: '#e15759', invalidation: '#4e79a7', 'page-request': '#f28e2b', injection: '#b07aa1' };

/** One lane per event kind, a tick per event over virtual time. */
export function timelineSvg(events: readonly TimelineEvent[], endNs: number): string {
  if (events.length === 0) return '<p class="empty">No faults, invalidations or page requests were traced in this run.</p>';
  const kinds = (['injection', 'fault', 'page-request', 'invalidation'] as const).filter((k) => events.some((e) => e.kind === k));
  const lane = 28;
  const lw = 100;
  const pw = W - lw - M.r;
  const h = M.t + kinds.length * lane + 30;
  const maxT = Math.max(1, endNs, ...events.map((e) => e.ns));
  const x = (t: number) => (lw + (t / maxT) * pw).toFixed(1);
  const lanes = kinds
    .map((k, i) => {
      const yy = M.t + i * lane;
      const ticks = events
        .filter((e) => e.kind === k)
        .map((e) => `<line x1="${x(e.ns)}" y1="${yy + 4}" x2="${x(e.ns)}" y2="${yy + lane - 6}" stroke="${KIND_COLOR[k]}"><title>${esc(`${fmtNs(e.ns)} ${e.name} (${e.source})`)}</title></line>`)
        .join('');
      return `<text x="${lw - 8}" y="${yy + 17}" font-size="12" text-anchor="end">${k}</text><line x1="${lw}" y1="${yy + lane - 4}" x2="${lw + pw}" y2="${yy + lane - 4}" stroke="#ccc"/>${ticks}`;
    })
    .join('');
  const axis = `<text x="${lw}" y="${h - 8}" font-size="11">0</text><text x="${lw + pw}" y="${h - 8}" font-size="11" text-anchor="end">${esc(fmtNs(maxT))}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" role="img" aria-label="timeline"><title>fault and invalidation timeline</title>${lanes}${axis}</svg>`;
}

function statsTable(s: Stats): string {
  return `<table class="kv"><tr><th>samples</th><th>min</th><th>mean</th><th>p50</th><th>p99</th><th>max</th></tr><tr><td>${s.count}</td><td>${fmtNs(s.min)}</td><td>${fmtNs(s.mean)}</td><td>${fmtNs(s.p50)}</td><td>${fmtNs(s.p99)}</td><td>${fmtNs(s.max)}</td></tr></table>`;
}

const TIMELINE_ROWS = 200;

/** The whole report of one run as one HTML document. `narrative` is what the scenario said. */
export function renderReport(r: RunResult, narrative: readonly string[] = []): string {
  return renderReports([{ result: r, narrative }]);
}

/**
 * Several runs (e.g. the same scenario on both machines, `ioemu run --machine all`)
 * in one self-contained document: one section per run, in the order given.
 */
export function renderReports(runs: readonly { result: RunResult; narrative: readonly string[] }[]): string {
  const first = runs[0]!.result;
  const title = `ioemu report: ${first.scenario} on ${runs.map((x) => x.result.machine).join(' and ')}`;
  const toc = runs.length > 1 ? `<h1>${esc(title)}</h1>\n<ul>${runs.map((x) => `<li>${esc(x.result.machine)}: ${x.result.ok ? '<span class="ok">passed</span>' : '<span class="bad">FAILED</span>'}</li>`).join('')}</ul>\n` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;font-size:13px}
.ok{color:#2a7d2a;font-weight:bold}.bad{color:#c00;font-weight:bold}.empty{color:#777;font-style:italic}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px}
</style></head><body>
${toc}${runs.map((x) => reportSection(x.result, x.narrative, runs.length > 1)).join('<hr>\n')}</body></html>
`;
}

/** One run's part of a report: summary, narrative, figures, plots, timeline, counters. */
function reportSection(r: RunResult, narrative: readonly string[], several: boolean): string {
  const events = r.trace.events;
  const pri = r.priServiceNs;
  const desc = descriptorLatencies(events);
  const occ = occupancy(events);
  const rates = hitRates(r.counters);
  const tl = timeline(events, threadNames(events));
  const params = Object.entries(r.params);
  const metrics = Object.entries(r.metrics);
  const counts = tl.reduce<Record<string, number>>((a, e) => ((a[e.kind] = (a[e.kind] ?? 0) + 1), a), {});
  const plans = r.plans.flatMap((p) => p.rules.map((s) => `<tr><td>${esc(s.rule.point)}</td><td>${esc(JSON.stringify(s.rule.when ?? {}))}</td><td>${esc(s.rule.action.kind)}</td><td>${s.matched}</td><td>${s.injected}</td></tr>`));
  const status = r.ok ? '<span class="ok">passed</span>' : '<span class="bad">FAILED</span>';
  return `<h1>ioemu report: ${esc(r.scenario)}${several ? ` on ${esc(r.machine)}` : ''}</h1>
<p>Machine <b>${esc(r.machine)}</b>, seed ${r.seed}${params.length ? `, parameters ${params.map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(' ')}` : ''}. Result: ${status}. Virtual time at the end: ${fmtNs(r.virtualNs)}; ${events.length} trace events. All times are virtual (the emulator's clock), not wall-clock.</p>
${r.failures.length ? `<h2>Failures</h2><ul>${r.failures.map((f) => `<li>${esc(f)}</li>`).join('')}</ul>` : ''}
${r.violations.length ? `<h2>Invariant violations</h2><ul>${r.violations.map((v) => `<li><b>${esc(v.kind)}</b>: ${esc(v.message)}</li>`).join('')}</ul>` : ''}
${narrative.length ? `<h2>What happened</h2><pre>${esc(narrative.join('\n'))}</pre>` : ''}
${metrics.length ? `<h2>Scenario figures</h2><table>${metrics.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join('')}</table>` : ''}
<h2>Page-fault service time</h2>
<p>Time from a page-request group leaving a device to its PRG Response reaching the device: the IOMMU's queue and interrupt, the driver, the host's fault handling and the way back, injected delays included (from the <code>dma-engine.pri.request</code> and <code>dma-engine.pri.response</code> trace events). The host's own share, from the group reaching its I/O page-fault queue to its response (<code>host.iopf.latencies</code>), has mean ${fmtNs(stats(r.iopfLatencies).mean)} over ${r.iopfLatencies.length} groups.</p>
${statsTable(stats(pri))}
${histogramSvg(pri, 'page-fault service time')}
<h2>Descriptor latency</h2>
<p>Time from dispatch to completion of each DMA-engine descriptor (durations of <code>dma-engine.desc.complete</code> trace events), page requests included.</p>
${statsTable(stats(desc))}
${histogramSvg(desc, 'descriptor latency')}
<h2>Queue occupancy over time</h2>
<p>Page-request groups each engine has outstanding, and groups waiting in the host's fault queue, reconstructed from the trace.</p>
${occupancySvg(occ, r.virtualNs)}
<h2>Cache hit rates</h2>
<p>From the machine's counters (<code>&lt;cache&gt;.hit</code> / <code>&lt;cache&gt;.miss</code>): IOMMU IOTLB and configuration caches, device ATCs.</p>
${hitRateSvg(rates)}
<h2>Fault, page-request and invalidation timeline</h2>
<p>${Object.entries(counts).map(([k, n]) => `${n} ${esc(k)} event(s)`).join(', ') || 'none'}.</p>
${timelineSvg(tl, r.virtualNs)}
${plans.length ? `<h3>Fault plans</h3><table><tr><th>point</th><th>when</th><th>action</th><th>matched</th><th>injected</th></tr>${plans.join('')}</table>` : ''}
${tl.length ? `<table><tr><th>time</th><th>kind</th><th>event</th><th>source</th><th>arguments</th></tr>${tl
    .slice(0, TIMELINE_ROWS)
    .map((e) => `<tr><td>${fmtNs(e.ns)}</td><td>${e.kind}</td><td>${esc(e.name)}</td><td>${esc(e.source)}</td><td><code>${esc(e.detail)}</code></td></tr>`)
    .join('')}</table>${tl.length > TIMELINE_ROWS ? `<p class="empty">${tl.length - TIMELINE_ROWS} more events in the trace file.</p>` : ''}` : ''}
<h2>Counters</h2>
<table>${Object.entries(r.counters).filter(([, v]) => v !== 0).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join('')}</table>
`;
}
