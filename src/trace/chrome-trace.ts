import type { Counter, Counters } from './counters.ts';
import type { TraceRecord, Tracer } from './tracer.ts';

/**
 * One entry of the Chrome trace-event format (the JSON that Perfetto and
 * chrome://tracing open): "X" complete events, "i" instants, "C" counters,
 * "M" metadata naming the tracks.
 */
export interface ChromeTraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'i' | 'C' | 'M';
  /** Microseconds. */
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  s?: 't' | 'p' | 'g';
  args: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ns';
  otherData: Record<string, string>;
}

/** A u64 (or any bigint) as the trace writes it: exact, in hex. */
export function bigintHex(v: bigint): string {
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

/** JSON.stringify that writes bigints exactly, as hex strings (for contexts and arguments that carry u64 values). */
export function stringifyExact(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? bigintHex(v) : v));
}

/**
 * Collects a tracer's records as Chrome trace events. Each `source` becomes a
 * named track (tid) in first-seen order, so the same run gives the same file.
 * Writing the file is the caller's business (src/node/ does it on Node).
 */
export class ChromeTraceSink {
  readonly events: ChromeTraceEvent[] = [];
  private readonly tids = new Map<string, number>();
  private readonly listener = (r: TraceRecord) => this.add(r);

  constructor(
    private readonly tracer: Tracer,
    private readonly meta: Record<string, string> = {},
  ) {
    tracer.on('*', this.listener);
  }

  detach(): void {
    this.tracer.off('*', this.listener);
  }

  private tid(source: string): number {
    let tid = this.tids.get(source);
    if (tid === undefined) {
      tid = this.tids.size + 1;
      this.tids.set(source, tid);
      this.events.push({
        name: 'thread_name',
        ph: 'M',
        ts: 0,
        pid: 1,
        tid,
        args: { name: source },
      });
    }
    return tid;
  }

  private add(r: TraceRecord): void {
    const tid = this.tid(r.source);
    const cat = r.name.split('.', 1)[0]!;
    const args = { ...r.args } as Record<string, unknown>;
    // u64 values travel as bigint: keep them exact, as hex strings (JSON has no 64-bit integers).
    for (const k in args) if (typeof args[k] === 'bigint') args[k] = bigintHex(args[k] as bigint);
    if (r.dur !== undefined) {
      // A span is traced when it ends; a complete event starts at its ts.
      this.events.push({ name: r.name, cat, ph: 'X', ts: (r.ts - r.dur) / 1000, dur: r.dur / 1000, pid: 1, tid, args });
    } else {
      this.events.push({ name: r.name, cat, ph: 'i', s: 't', ts: r.ts / 1000, pid: 1, tid, args });
    }
  }

  /** Each counter with the value this sink last recorded (sampleChangedCounters), by name. */
  private readonly recorded = new Map<string, { counter: Readonly<Counter>; value: number | undefined }>();
  /** The same entries as a list, rebuilt when the set of counters grows. */
  private watched: { counter: Readonly<Counter>; value: number | undefined }[] = [];
  private watchedFrom: Counters | undefined;

  /**
   * Record, as "C" samples at virtual time `nowNs`, the counters whose value
   * changed since this sink last recorded them (every counter the first
   * time): called each time the clock moves on, it gives each counter a
   * track that steps where the counter changed, at a cost proportional to
   * the counters, not to the events.
   */
  sampleChangedCounters(counters: Counters, nowNs: number): void {
    if (counters !== this.watchedFrom || counters.size !== this.watched.length) {
      this.watchedFrom = counters;
      this.watched = [];
      for (const counter of counters.all()) {
        let w = this.recorded.get(counter.name);
        if (w === undefined || w.counter !== counter) this.recorded.set(counter.name, (w = { counter, value: undefined }));
        this.watched.push(w);
      }
    }
    for (const w of this.watched) {
      const v = w.counter.value;
      if (w.value === v) continue;
      w.value = v;
      this.events.push({ name: w.counter.name, ph: 'C', ts: nowNs / 1000, pid: 1, tid: 0, args: { value: v } });
    }
  }

  /** Record the current values of counters as a "C" sample at virtual time `nowNs`. */
  sampleCounters(counters: Counters, nowNs: number, prefix = ''): void {
    const snap = counters.snapshot(prefix);
    for (const [name, value] of Object.entries(snap)) {
      this.events.push({ name, ph: 'C', ts: nowNs / 1000, pid: 1, tid: 0, args: { value } });
    }
  }

  toJSON(): ChromeTrace {
    return {
      traceEvents: [
        { name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: 'ioemu' } },
        ...this.events,
      ],
      displayTimeUnit: 'ns',
      otherData: { ...this.meta },
    };
  }

  stringify(): string {
    return JSON.stringify(this.toJSON());
  }
}
