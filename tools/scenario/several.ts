/**
 * Output for several runs of one scenario (`ioemu run --machine all`, which
 * `npm start` uses): one Chrome trace with a process per run, and a short
 * side-by-side table a person reads at a glance.
 */
import type { ChromeTrace, ChromeTraceEvent } from '../../src/trace/chrome-trace.ts';
import { fmtNs } from '../report/html.ts';
import { descriptorLatencies, stats } from '../report/figures.ts';
import type { RunResult } from './scenario.ts';

/**
 * The runs' traces in one file: run i becomes process i+1, named after its
 * machine, so Perfetto shows the machines one above the other on one
 * (virtual) time axis. Each run's own events keep their order.
 */
export function mergedTrace(runs: readonly RunResult[]): ChromeTrace {
  const traceEvents: ChromeTraceEvent[] = [];
  runs.forEach((r, i) => {
    const pid = i + 1;
    for (const e of r.trace.toJSON().traceEvents) {
      if (e.ph === 'M' && e.name === 'process_name') traceEvents.push({ ...e, pid, args: { name: `ioemu ${r.machine}` } });
      else traceEvents.push({ ...e, pid });
    }
  });
  const first = runs[0]!;
  return {
    traceEvents,
    displayTimeUnit: 'ns',
    otherData: { scenario: first.scenario, machines: runs.map((r) => r.machine).join(','), seed: String(first.seed) },
  };
}

/** A small table, one row per run: result, virtual time, page requests, fault service, descriptors, the injected fault. */
export function comparisonTable(runs: readonly RunResult[]): string[] {
  const head = ['machine', 'result', 'virtual time', 'page requests', 'PRI service (mean)', 'descriptors', 'faults injected'];
  const rows = runs.map((r) => {
    const pf = stats(r.priServiceNs);
    const injected = r.plans.reduce((a, p) => a + p.rules.reduce((b, s) => b + s.injected, 0), 0);
    return [
      r.machine,
      r.ok ? 'PASSED' : 'FAILED',
      fmtNs(r.virtualNs),
      String(r.counters['iopf.requests'] ?? 0),
      pf.count ? fmtNs(pf.mean) : '-',
      String(descriptorLatencies(r.trace.events).length),
      String(injected),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [`${runs[0]!.scenario} on ${runs.length} machines:`, line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

