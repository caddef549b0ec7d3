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

  /**
   * Names with listeners, refreshed whenever one is added or removed through
   * this class, so `wants` is one lookup on hot paths. A once-listener that
   * fired may linger here until the next change: that only costs an emit
   * nobody hears, never a missed event.
   */
  private active = new Set<string>();
  private all = false;

  wants(name: TraceName): boolean {
    // With nobody listening (the common case on hot paths) no hash lookup at all.
    return this.all || (this.active.size !== 0 && this.active.has(name));
  }

  private refresh(): void {
    this.active = new Set(this.eventNames().map(String));
    this.all = this.active.has('*');
  }

  override on<T extends EventEmitter.EventNames<TraceListeners>>(event: T, fn: EventEmitter.EventListener<TraceListeners, T>, context?: unknown): this {
    super.on(event, fn, context);
    this.refresh();
    return this;
  }

  override once<T extends EventEmitter.EventNames<TraceListeners>>(event: T, fn: EventEmitter.EventListener<TraceListeners, T>, context?: unknown): this {
    super.once(event, fn, context);
    this.refresh();
    return this;
  }

  override off<T extends EventEmitter.EventNames<TraceListeners>>(
    event: T,
    fn?: EventEmitter.EventListener<TraceListeners, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    super.off(event, fn, context, once);
    this.refresh();
    return this;
  }

  override removeAllListeners(event?: EventEmitter.EventNames<TraceListeners>): this {
    super.removeAllListeners(event);
    this.refresh();
    return this;
  }

  trace<K extends TraceName>(name: K, source: string, args: TraceEventMap[K], dur?: number): void {
    if (!this.wants(name)) return;
    const record: TraceRecord<K> = { name, ts: this.clock(), source, args };
    if (dur !== undefined) record.dur = dur;
    (this.emit as (n: string, r: TraceRecord<K>) => boolean)(name, record);
    this.emit('*', record as unknown as TraceRecord);
  }
}
