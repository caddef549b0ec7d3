/**
 * The table at the top of a report: one row per run (each machine of
 * `--machine all`, each point of a sweep), the figures a person compares
 * first, side by side.
 */
import type { RunResult } from '../scenario/scenario.ts';
import { descriptorLatencies, hitRates, injections, iopfStats, pooledHitRate, stats, type Stats } from './figures.ts';
import { esc, fmtNs, fmtPercent } from './format.ts';

export interface ComparisonRow {
  machine: string;
  /** The run's parameters, `name=value` each. */
  params: Record<string, string>;
  ok: boolean;
  virtualNs: number;
  pageRequests: number;
  pri: Stats;
  descriptors: Stats;
  atcHitRate: number | undefined;
  iotlbHitRate: number | undefined;
  injected: number;
  matched: number;
}

export function comparisonRow(r: RunResult): ComparisonRow {
  const rates = hitRates(r.counters);
  return {
    machine: r.machine,
    params: r.params,
    ok: r.ok,
    virtualNs: r.virtualNs,
    pageRequests: r.counters['iopf.requests'] ?? 0,
    pri: iopfStats(r),
    descriptors: stats(descriptorLatencies(r.trace.events)),
    atcHitRate: pooledHitRate(rates, /\.atc$/),
    iotlbHitRate: pooledHitRate(rates, /\.iotlb$/),
    ...injections(r),
  };
}

/** Parameters whose value differs between runs: the sweep's axes. */
export function varyingParams(rows: readonly ComparisonRow[]): string[] {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.params)))].sort();
  return names.filter((n) => new Set(rows.map((r) => r.params[n] ?? '')).size > 1);
}

const latencies = (s: Stats) => (s.count === 0 ? '<td class="num" colspan="3">none</td>' : `<td class="num">${fmtNs(s.p50)}</td><td class="num">${fmtNs(s.p99)}</td><td class="num">${fmtNs(s.max)}</td>`);
const rate = (x: number | undefined) => `<td class="num">${x === undefined ? '-' : fmtPercent(x)}</td>`;

/** The comparison as an HTML table; row i links to `#run-i`. */
export function comparisonHtml(runs: readonly RunResult[]): string {
  const rows = runs.map(comparisonRow);
  const axes = varyingParams(rows);
  const several = new Set(rows.map((r) => r.machine)).size > 1;
  const head =
    `<tr><th rowspan="2">run</th>${axes.map((a) => `<th rowspan="2">${esc(a)}</th>`).join('')}<th rowspan="2">result</th><th rowspan="2">virtual<br>time</th>` +
    `<th rowspan="2">page<br>requests</th><th colspan="3">PRI service (per group)</th><th rowspan="2">descriptors</th><th colspan="3">descriptor latency</th>` +
    `<th colspan="2">cache hits</th><th rowspan="2">injected</th></tr>` +
    `<tr><th>p50</th><th>p99</th><th>max</th><th>p50</th><th>p99</th><th>max</th><th>ATC</th><th>IOTLB</th></tr>`;
  const body = rows
    .map((r, i) => {
      const name = several || axes.length === 0 ? r.machine : `run ${i + 1}`;
      return (
        `<tr><td><a href="#run-${i}">${esc(name)}</a></td>${axes.map((a) => `<td class="num">${esc(r.params[a] ?? '')}</td>`).join('')}` +
        `<td>${r.ok ? '<span class="ok">PASSED</span>' : '<span class="bad">FAILED</span>'}</td><td class="num">${fmtNs(r.virtualNs)}</td>` +
        `<td class="num">${r.pageRequests}</td>${latencies(r.pri)}<td class="num">${r.descriptors.count}</td>${latencies(r.descriptors)}` +
        `${rate(r.atcHitRate)}${rate(r.iotlbHitRate)}<td class="num" title="${r.matched} plan hits matched, ${r.injected} injected">${r.injected}</td></tr>`
      );
    })
    .join('');
  return `<div class="scroll"><table class="compare">${head}${body}</table></div>`;
}
