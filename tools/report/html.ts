/**
 * The HTML report (`ioemu run --report out.html`, `ioemu sweep --report`, the
 * playground): one self-contained file, nothing fetched, plots as inline SVG
 * and one small inline script for the event tables. At the top, a table
 * comparing the runs (machines, sweep points); then a section per run:
 * latency histograms on log axes, activity and counters over a virtual-time
 * axis that collapses idle stretches, cache hit rates, fault plans, the
 * narrative, and the trace events as a collapsed, filterable, paged table.
 */
import type { RunResult } from '../scenario/scenario.ts';
import { activityLegend, activitySvg, changingCounters, countersSvg, runAxis, type ActivityInput } from './activity-plots.ts';
import { comparisonHtml } from './compare.ts';
import { EVENT_TABLE_SCRIPT, eventRows, eventTableHtml } from './event-table.ts';
import { counterSeries, descriptorLatencies, descriptorSpans, eventTimes, hitRates, occupancy, stats, threadNames, timeline, type Stats } from './figures.ts';
import { esc, fmtNs, fmtTime } from './format.ts';
import { histogramSvg, hitRateSvg } from './plots.ts';

export { fmtNs } from './format.ts';

export interface ReportRun {
  result: RunResult;
  /** What the scenario said, line by line. */
  narrative: readonly string[];
}

export interface ReportOptions {
  /** The page's title (default: "<scenario> on <machines>"). */
  title?: string;
}

/** The whole report of one run as one HTML document. `narrative` is what the scenario said. */
export function renderReport(r: RunResult, narrative: readonly string[] = []): string {
  return renderReports([{ result: r, narrative }]);
}

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;max-width:1160px;margin:1.5em auto;padding:0 1.2em;color:#222}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.3em;margin-top:2.2em;border-bottom:2px solid #ccd}h3{font-size:1.05em;margin:1.4em 0 .4em}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #d8d8d8;padding:3px 7px;text-align:left;font-size:14px;white-space:nowrap}
th{background:#f3f4f7}.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1f7a1f;font-weight:bold}.bad{color:#c00;font-weight:bold}.empty,.note{color:#666;font-style:italic}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(540px,1fr));gap:10px 32px;align-items:start}
figure{margin:0}figcaption{font-size:14px;color:#444;margin:.2em 0 .4em}
.scroll{overflow-x:auto}td.wrap{white-space:normal;overflow-wrap:anywhere;min-width:12em}
.legend{display:flex;flex-wrap:wrap;gap:4px 20px;font-size:14px;margin:.2em 0 .6em 230px}
.legend i{display:inline-block;width:14px;height:10px;margin-right:6px;vertical-align:middle}
pre{background:#f6f6f6;padding:.6em;font-size:13px;white-space:pre-wrap}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
.controls{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center;margin:.6em 0;font-size:14px}
.controls select,.controls input,.controls button{font:inherit}
.evtab td:last-child{white-space:normal;overflow-wrap:anywhere;font-family:ui-monospace,monospace;font-size:13px}
.evtab{width:100%}
.counters{columns:3 300px;font-size:14px}.counters div{display:flex;justify-content:space-between;gap:12px;padding:1px 0;border-bottom:1px dotted #ddd}
`;

/**
 * Several runs (the same scenario on both machines, `ioemu run --machine
 * all`, or the points of a sweep) in one self-contained document: the
 * comparison first, then one section per run in the order given.
 */
export function renderReports(runs: readonly ReportRun[], o: ReportOptions = {}): string {
  const first = runs[0]!.result;
  const machines = [...new Set(runs.map((x) => x.result.machine))];
  const title = o.title ?? `${first.scenario} on ${machines.join(' and ')}`;
  const seeds = [...new Set(runs.map((x) => x.result.seed))];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ioemu report: ${esc(title)}</title>
<style>${STYLE}</style></head><body>
<h1>ioemu report: ${esc(title)}</h1>
<p class="sub">Seed ${seeds.join(', ')}. ${runs.length} run${runs.length > 1 ? 's' : ''}. All times are virtual (the emulator's clock), not wall-clock: the same seed gives the same report.</p>
${comparisonHtml(runs.map((x) => x.result))}
${runs.map((x, i) => runSection(x, i, runs.length > 1)).join('\n')}
<script>${EVENT_TABLE_SCRIPT};</script>
</body></html>
`;
}

function statsTable(s: Stats, counted: string): string {
  const cell = (v: number) => `<td class="num">${fmtNs(v)}</td>`;
  return `<table><tr><th>${esc(counted)}</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr><tr><td class="num">${s.count}</td>${[s.min, s.mean, s.p50, s.p90, s.p99, s.max].map(cell).join('')}</tr></table>`;
}

/** Counters shown as rows over time before the rest are folded away. */
const COUNTER_ROWS = 12;

/** One run's section: summary, plots, tables. */
function runSection({ result: r, narrative }: ReportRun, i: number, several: boolean): string {
  const events = r.trace.events;
  const threads = threadNames(events);
  const desc = descriptorLatencies(events);
  const tl = timeline(events, threads);
  const axis = runAxis(eventTimes(events), r.virtualNs);
  const act: ActivityInput = { axis, descriptors: descriptorSpans(events), events: tl, occupancy: occupancy(events), endNs: r.virtualNs };
  const changing = changingCounters(counterSeries(events));
  const params = Object.entries(r.params);
  const metrics = Object.entries(r.metrics);
  const counts = tl.reduce<Record<string, number>>((a, e) => ((a[e.kind] = (a[e.kind] ?? 0) + 1), a), {});
  const plans = r.plans.flatMap((p) => p.rules.map((s) => `<tr><td>${esc(s.rule.point)}</td><td class="wrap">${esc(JSON.stringify(s.rule.when ?? {}))}</td><td>${esc(s.rule.action.kind)}</td><td class="num">${s.matched}</td><td class="num">${s.injected}</td></tr>`));
  const status = r.ok ? '<span class="ok">PASSED</span>' : '<span class="bad">FAILED</span>';
  const name = several ? `${r.scenario} on ${r.machine}${params.length ? ` (${params.map(([k, v]) => `${k}=${v}`).join(', ')})` : ''}` : r.scenario;
  const nonZero = Object.entries(r.counters).filter(([, v]) => v !== 0);
  return `<section id="run-${i}">
<h2>${esc(name)}: ${status}</h2>
<p>Machine <b>${esc(r.machine)}</b>, seed ${r.seed}${params.length ? `, parameters ${params.map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(' ')}` : ''}. Virtual time at the end: <b>${fmtTime(r.virtualNs, 1000)}</b>; ${events.length} trace events.</p>
${r.failures.length ? `<h3>Failures</h3><ul>${r.failures.map((f) => `<li>${esc(f)}</li>`).join('')}</ul>` : ''}
${r.violations.length ? `<h3>Invariant violations</h3><ul>${r.violations.map((v) => `<li><b>${esc(v.kind)}</b>: ${esc(v.message)}</li>`).join('')}</ul>` : ''}
<div class="grid">
<figure><h3>Page-fault service time</h3><figcaption>From a page-request group leaving a device to its PRG Response reaching the device: the IOMMU's queue and interrupt, the driver, the host's fault handling and the way back, injected delays included (<code>dma-engine.pri.request</code> to <code>dma-engine.pri.response</code>). The host's own share (its I/O page-fault queue to the response, <code>host.iopf.latencies</code>): mean ${fmtTime(r.iopfMeanNs, 1000)} over ${r.iopfGroups} groups.</figcaption>
${statsTable(stats(r.priServiceNs), 'groups')}
${histogramSvg(r.priServiceNs, { title: 'page-fault service time', quantity: 'service time per page-request group at the device', counted: 'groups' })}</figure>
<figure><h3>Descriptor latency</h3><figcaption>From dispatch to completion of each DMA-engine descriptor, page requests included.</figcaption>
${statsTable(stats(desc), 'descriptors')}
${histogramSvg(desc, { title: 'descriptor latency', quantity: 'latency per descriptor', counted: 'descriptors' })}</figure>
</div>
<h3>Activity over virtual time</h3>
<p class="note">Descriptors as spans; ${Object.entries(counts).map(([k, n]) => `${n} ${esc(k)} event(s)`).join(', ') || 'no fault, page-request or invalidation events'}; the page-request groups each engine and the host have outstanding. Hover for details.</p>
${activitySvg(act)}
${activityLegend(act)}
<h3>Counters over virtual time</h3>
<p class="note">Each counter that changed during the run, sampled each time the clock moved; the number on the right is its final value.</p>
${countersSvg(changing.slice(0, COUNTER_ROWS), axis, r.virtualNs)}
${changing.length > COUNTER_ROWS ? `<details><summary>${changing.length - COUNTER_ROWS} more counters over time</summary>${countersSvg(changing.slice(COUNTER_ROWS), axis, r.virtualNs)}</details>` : ''}
<div class="grid">
<div><h3>Cache hit rates</h3>${hitRateSvg(hitRates(r.counters))}</div>
<div>${metrics.length ? `<h3>Scenario figures</h3><table>${metrics.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="num">${v}</td></tr>`).join('')}</table>` : ''}
${plans.length ? `<h3>Fault plans</h3><table><tr><th>point</th><th>when</th><th>action</th><th>matched</th><th>injected</th></tr>${plans.join('')}</table>` : ''}</div>
</div>
${narrative.length ? `<details open><summary>What the scenario did (${narrative.length} lines)</summary><pre>${esc(narrative.join('\n'))}</pre></details>` : ''}
${eventTableHtml(eventRows(events, threads), `events-${i}`)}
<details><summary>Final values of the ${nonZero.length} non-zero counters</summary><div class="counters">${nonZero.map(([k, v]) => `<div><span>${esc(k)}</span><span class="num">${v}</span></div>`).join('')}</div></details>
</section>`;
}
