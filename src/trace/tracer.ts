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
  /** Duration in virtual ns for events that span time (a page fault's service); such an event is traced when the span ends, at `ts`. */
  dur?: number;
}

/**
 * A module's own trace events (a device's, or any part built outside the
 * tree): each name with a one-line description. The shape of each event's
 * arguments is the type parameter of Tracer.define, so the module's code is
 * type-checked against its own events as built-in ones are against
 * events.ts.
 */
export type TraceEventTable<M> = { readonly [K in keyof M]: string };

/** The typed emitter a module gets for its own events (Tracer.define). */
export interface TraceChannel<M> {
  /** Does anyone listen to this event? Guard argument construction on hot paths with it. */
  wants(name: keyof M & string): boolean;
  trace<K extends keyof M & string>(name: K, source: string, args: M[K], dur?: number): void;
}

/** The events a part defined at run time, with their descriptions. */
export interface DefinedTraceEvent {
  readonly name: string;
  readonly description: string;
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

  private readonly defined = new Map<string, DefinedTraceEvent>();

  /**
   * Define a module's own trace events (the idea of QEMU's per-directory
   * trace-events files): they reach listeners, the Chrome trace and reports
   * exactly as built-in events do. Idempotent for the same table (a second
   * device of a kind shares the events); a name defined with another
   * description throws, as does a name that is not `owner.event` in
   * lower-case dotted words.
   */
  define<M extends object>(table: TraceEventTable<M>): TraceChannel<M> {
    for (const [name, description] of Object.entries(table) as [string, string][]) {
      if (!/^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$/.test(name)) throw new Error(`trace event "${name}": names are dotted lower-case words (owner.event)`);
      const have = this.defined.get(name);
      if (have !== undefined && have.description !== description) throw new Error(`trace event "${name}" is already defined differently`);
      if (have === undefined) this.defined.set(name, Object.freeze({ name, description }));
    }
    const untyped = this as unknown as { wants(n: string): boolean; trace(n: string, s: string, a: unknown, d?: number): void };
    return {
      wants: (name) => untyped.wants(name),
      trace: (name, source, args, dur) => untyped.trace(name, source, args, dur),
    };
  }

  /** Events defined at run time (Tracer.define), in definition order. */
  definedEvents(): DefinedTraceEvent[] {
    return [...this.defined.values()];
  }
}
