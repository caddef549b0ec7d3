/**
 * Figures derived from one run: latency statistics, cache hit rates from the
 * counters, queue occupancy and the fault/invalidation timeline from the
 * trace. Shared by the run summary, the HTML report and sweep CSVs.
 */
import type { ChromeTraceEvent } from '../../src/trace/chrome-trace.ts';
import type { RunResult } from '../scenario/scenario.ts';

export interface Stats {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function stats(xs: readonly number[]): Stats {
  if (xs.length === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(f * s.length) - 1))]!;
  return { count: s.length, min: s[0]!, mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1]! };
}

/**
 * The host's page-fault handling times of a run: percentiles from its
 * sample, the count and the mean exact (the sample keeps at most 10,000
 * groups; host.iopf.latencies counts and sums every one).
 */
export function iopfStats(r: Pick<RunResult, 'iopfLatencies' | 'iopfGroups' | 'iopfMeanNs'>): Stats {
  return { ...stats(r.iopfLatencies), count: r.iopfGroups, mean: r.iopfMeanNs };
}

export interface HitRate {
  /** Counter prefix, e.g. "vtd.iotlb" or "dma0.atc". */
  cache: string;
  hits: number;
  misses: number;
  rate: number;
}

/** Every cache with `<prefix>.hit` and `<prefix>.miss` counters (IOTLBs, ATCs, context caches...). */
export function hitRates(counters: Record<string, number>): HitRate[] {
  const out: HitRate[] = [];
  for (const [name, hits] of Object.entries(counters)) {
    if (!name.endsWith('.hit')) continue;
    const cache = name.slice(0, -4);
    const misses = counters[`${cache}.miss`] ?? 0;
    if (hits + misses === 0) continue;
    out.push({ cache, hits, misses, rate: hits / (hits + misses) });
  }
  for (const [name, misses] of Object.entries(counters)) {
    if (!name.endsWith('.miss')) continue;
    const cache = name.slice(0, -5);
    if (counters[`${cache}.hit`] === undefined && misses > 0) out.push({ cache, hits: 0, misses, rate: 0 });
  }
  return out.sort((a, b) => a.cache.localeCompare(b.cache));
}

/** Descriptor latencies (virtual ns) from `dma-engine.desc.complete` durations. */
export function descriptorLatencies(events: readonly ChromeTraceEvent[]): number[] {
  const out: number[] = [];
  for (const e of events) if (e.name === 'dma-engine.desc.complete' && e.dur !== undefined) out.push(Math.round(e.dur * 1000));
  return out;
}

/**
 * PRI service times at the device (virtual ns), from the trace: from a page
 * request group leaving a DMA engine (its `dma-engine.pri.request` with
 * last=1) to the PRG Response for it reaching the engine
 * (`dma-engine.pri.response`, expected). That is the whole loop the device
 * waits on (the IOMMU's queue and interrupt, the driver, the host's fault
 * handling, the response on its way back), so an injected delay anywhere on
 * it counts. A group that never got its response (lost, timed out) has no
 * sample; its PRG index is reused by a later group.
 */
export function priServiceTimes(events: readonly ChromeTraceEvent[]): number[] {
  const open = new Map<string, number>();
  const out: number[] = [];
  for (const e of events) {
    if (e.name !== 'dma-engine.pri.request' && e.name !== 'dma-engine.pri.response') continue;
    const a = e.args as { dev?: unknown; prg?: unknown; last?: unknown; expected?: unknown };
    const key = `${String(a.dev)}/${String(a.prg)}`;
    const ns = Math.round(e.ts * 1000);
    if (e.name === 'dma-engine.pri.request') {
      if (a.last === true) open.set(key, ns);
    } else if (a.expected !== false) {
      const sent = open.get(key);
      if (sent !== undefined) {
        out.push(ns - sent);
        open.delete(key);
      }
    }
  }
  return out;
}

export interface OccupancySeries {
  name: string;
  /** [virtual ns, value] after each change. */
  points: [number, number][];
}

/**
 * Queue occupancy over time, from the trace: page requests each device has
 * outstanding (dma-engine.pri.request with last=1 opens a group, its
 * dma-engine.pri.response closes it, and so does a step of the device's
 * `<dev>.pri.timeouts` counter samples), and page-request groups waiting in
 * the host's fault queue (iopf.report last=1 / iopf.response).
 */
export function occupancy(events: readonly ChromeTraceEvent[]): OccupancySeries[] {
  const series = new Map<string, { v: number; points: [number, number][] }>();
  const bump = (name: string, ts: number, d: number) => {
    const s = series.get(name) ?? { v: 0, points: [[0, 0]] };
    s.v = Math.max(0, s.v + d);
    s.points.push([Math.round(ts * 1000), s.v]);
    series.set(name, s);
  };
  const timeouts = new Map<string, number>();
  for (const e of events) {
    const a = e.args as Record<string, unknown>;
    if (e.ph === 'C') {
      if (!e.name.endsWith('.pri.timeouts')) continue;
      const dev = e.name.slice(0, -'.pri.timeouts'.length);
      const v = Number(a.value);
      const before = timeouts.get(dev) ?? v;
      timeouts.set(dev, v);
      if (v > before && series.has(`${dev} page-request groups outstanding`)) bump(`${dev} page-request groups outstanding`, e.ts, before - v);
    } else if (e.name === 'dma-engine.pri.request' && a.last === true) bump(`${String(a.dev)} page-request groups outstanding`, e.ts, +1);
    else if (e.name === 'dma-engine.pri.response' && a.expected !== false) bump(`${String(a.dev)} page-request groups outstanding`, e.ts, -1);
    else if (e.name === 'iopf.report' && a.last === true) bump('host I/O page-fault queue', e.ts, +1);
    else if (e.name === 'iopf.response') bump('host I/O page-fault queue', e.ts + (e.dur ?? 0), -1);
  }
  return [...series.entries()].map(([name, s]) => ({ name, points: s.points.sort((x, y) => x[0] - y[0]) }));
}

export interface TimelineEvent {
  ns: number;
  kind: 'fault' | 'invalidation' | 'page-request' | 'injection';
  name: string;
  source: string;
  detail: string;
}

const KINDS: [RegExp, TimelineEvent['kind']][] = [
  [/^fault\.inject$/, 'injection'],
  [/(^|\.)(fault|event|fault\.record|abort|error|gerror|stall|prq\.overflow|devtlb\.timeout|qi\.error)$/, 'fault'],
  [/(invalidate|tlbi|inv|inv-complete|atc\.inv|devtlb\.complete|cfg\.invalidate|sync)$/, 'invalidation'],
  [/(pri\.request|pri\.response|iopf\.report|iopf\.response|prg\.response|priq|pri\.resp)$/, 'page-request'],
];

export function classify(name: string): TimelineEvent['kind'] | undefined {
  for (const [re, k] of KINDS) if (re.test(name)) return k;
  return undefined;
}

/** Faults, invalidations, page requests and injections, in time order. */
export function timeline(events: readonly ChromeTraceEvent[], threads: ReadonlyMap<number, string>): TimelineEvent[] {
  const out: TimelineEvent[] = [];
  for (const e of events) {
    if (e.ph !== 'X' && e.ph !== 'i') continue;
    const kind = classify(e.name);
    if (kind === undefined) continue;
    out.push({ ns: Math.round(e.ts * 1000), kind, name: e.name, source: threads.get(e.tid) ?? String(e.tid), detail: JSON.stringify(e.args, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)) });
  }
  return out;
}

export function threadNames(events: readonly ChromeTraceEvent[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') m.set(e.tid, String(e.args.name));
  return m;
}

/** A histogram on a logarithmic grid (see logBins). */
export interface LogHistogram {
  /** Samples <= 0, which have no place on a log axis. */
  zeros: number;
  /** Edge-to-edge bins covering [lo, hi), `perDecade` to a decade; empty ones included. */
  bins: { lo: number; hi: number; count: number }[];
  /** The axis: whole decades around the samples, at least two. */
  lo: number;
  hi: number;
}

/**
 * Latencies binned on a log grid (`perDecade` bins per factor of ten), so a
 * run whose descriptors took 3 us and one that took 10 ms shows both, each
 * in its own bin, and samples that are all equal make one narrow bar in the
 * middle of a two-decade axis rather than one full-width block.
 */
export function logBins(xs: readonly number[], perDecade = 4): LogHistogram {
  const pos = xs.filter((x) => x > 0);
  const zeros = xs.length - pos.length;
  if (pos.length === 0) return { zeros, bins: [], lo: 1, hi: 100 };
  // The 1e-9 keeps exact powers of ten (log10 may return 2.9999999999999996) in the bin they start.
  const idx = (x: number) => Math.floor(Math.log10(x) * perDecade + 1e-9);
  let min = Infinity;
  let max = -Infinity;
  for (const x of pos) {
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  let dLo = Math.floor(idx(min) / perDecade);
  let dHi = Math.floor(idx(max) / perDecade) + 1;
  if (dHi - dLo < 2) dLo -= 1;
  if (dHi - dLo < 2) dHi += 1;
  const first = dLo * perDecade;
  const counts = new Array<number>((dHi - dLo) * perDecade).fill(0);
  for (const x of pos) counts[idx(x) - first]!++;
  const edge = (k: number) => Number((10 ** (k / perDecade)).toPrecision(12));
  return { zeros, bins: counts.map((count, i) => ({ lo: edge(first + i), hi: edge(first + i + 1), count })), lo: edge(first), hi: edge(dHi * perDecade) };
}

/** One descriptor as a span of virtual time (from its dma-engine.desc.complete slice). */
export interface DescriptorSpan {
  dev: string;
  start: number;
  end: number;
  status: string;
}

export function descriptorSpans(events: readonly ChromeTraceEvent[]): DescriptorSpan[] {
  const out: DescriptorSpan[] = [];
  for (const e of events) {
    if (e.name !== 'dma-engine.desc.complete' || e.dur === undefined) continue;
    const start = Math.round(e.ts * 1000);
    out.push({ dev: String(e.args.dev), start, end: start + Math.round(e.dur * 1000), status: String(e.args.status) });
  }
  return out;
}

/** Each counter's samples ("C" events) in time order: [virtual ns, value]. */
export function counterSeries(events: readonly ChromeTraceEvent[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const e of events) {
    if (e.ph !== 'C') continue;
    const s = out.get(e.name) ?? [];
    s.push([Math.round(e.ts * 1000), Number(e.args.value)]);
    out.set(e.name, s);
  }
  for (const s of out.values()) s.sort((a, b) => a[0] - b[0]);
  return out;
}

/** Every virtual time at which something was traced (instants, and both ends of spans). */
export function eventTimes(events: readonly ChromeTraceEvent[]): number[] {
  const out: number[] = [];
  for (const e of events) {
    if (e.ph !== 'X' && e.ph !== 'i') continue;
    const t = Math.round(e.ts * 1000);
    out.push(t);
    if (e.dur !== undefined) out.push(t + Math.round(e.dur * 1000));
  }
  return out;
}

/** Faults injected and plan hits that matched, over every plan of a run. */
export function injections(r: RunResult): { injected: number; matched: number } {
  let injected = 0;
  let matched = 0;
  for (const p of r.plans) for (const s of p.rules) (injected += s.injected), (matched += s.matched);
  return { injected, matched };
}

/** The hit rate of every cache whose name matches, pooled (undefined when none was used). */
export function pooledHitRate(rates: readonly HitRate[], re: RegExp): number | undefined {
  const h = rates.filter((x) => re.test(x.cache));
  const hits = h.reduce((a, x) => a + x.hits, 0);
  const all = hits + h.reduce((a, x) => a + x.misses, 0);
  return all === 0 ? undefined : hits / all;
}

/** The one-row summary of a run (a sweep's CSV columns before the scenario's own metrics). */
export function summaryRow(r: RunResult): Record<string, string | number> {
  const iopf = iopfStats(r);
  const pri = stats(r.priServiceNs);
  const desc = stats(descriptorLatencies(r.trace.events));
  const rates = hitRates(r.counters);
  const agg = (re: RegExp) => pooledHitRate(rates, re)?.toFixed(4) ?? '';
  return {
    machine: r.machine,
    seed: r.seed,
    ok: r.ok ? 1 : 0,
    virtual_ns: r.virtualNs,
    pri_groups: pri.count,
    pri_service_mean_ns: Math.round(pri.mean),
    pri_service_p50_ns: pri.p50,
    pri_service_p99_ns: pri.p99,
    iopf_groups: iopf.count,
    iopf_mean_ns: Math.round(iopf.mean),
    iopf_p50_ns: iopf.p50,
    iopf_p99_ns: iopf.p99,
    descriptors: desc.count,
    desc_mean_ns: Math.round(desc.mean),
    desc_p99_ns: desc.p99,
    atc_hit_rate: agg(/\.atc$/),
    iotlb_hit_rate: agg(/\.iotlb$/),
  };
}
