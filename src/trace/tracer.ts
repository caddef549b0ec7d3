import { EventEmitter } from 'eventemitter3';
import type { TraceEventMap, TraceName } from './events.ts';

export type { TraceEventMap, TraceName } from './events.ts';

export interface TraceRecord<K extends TraceName = TraceName> {
  name: K;
  /** Virtual time in nanoseconds. */
  ts: number;
  /** Which block emitted it ("smmuv3", "0000:00:01.0", "host"). */
  source: string;
  args: TraceEventMap[K];
  /** Duration in virtual ns for events that span time (a page fault's service). */
  dur?: number;
}

type TraceListeners = {
  [K in TraceName]: (record: TraceRecord<K>) => void;
} & { '*': (record: TraceRecord) => void };

/**
 * The typed trace bus of one machine. Listeners subscribe to one event name or
 * to '*'. Emitting costs one check when nobody listens, so models guard
 * argument construction with `wants(name)` on hot paths.
 */
export class Tracer extends EventEmitter<TraceListeners> {
  private readonly clock: () => number;

  constructor(clock: () => number = () => 0) {
    super();
    this.clock = clock;
  }

  wants(name: TraceName): boolean {
    return this.listenerCount(name) > 0 || this.listenerCount('*') > 0;
  }

  trace<K extends TraceName>(name: K, source: string, args: TraceEventMap[K], dur?: number): void {
    if (!this.wants(name)) return;
    const record: TraceRecord<K> = { name, ts: this.clock(), source, args };
    if (dur !== undefined) record.dur = dur;
    (this.emit as (n: string, r: TraceRecord<K>) => boolean)(name, record);
    this.emit('*', record as unknown as TraceRecord);
  }
}
