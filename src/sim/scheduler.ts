/**
 * Discrete-event scheduler in virtual nanoseconds. Events at the same time run
 * in the order they were scheduled (a sequence number breaks ties), so a run
 * is reproducible. Nothing here reads the wall clock.
 */
export interface ScheduledEvent {
  readonly time: number;
  readonly seq: number;
  readonly label: string;
  /** False once it ran or was cancelled. */
  readonly pending: boolean;
}

interface Entry {
  time: number;
  seq: number;
  label: string;
  pending: boolean;
  fn: () => void;
}

const NOOP = (): void => {};

/**
 * Thrown when virtual time would pass the scheduler's `timeLimitNs` (a fault
 * campaign's per-run limit): the run is over, as a hung one would be.
 */
export class VirtualTimeLimit extends Error {
  override name = 'VirtualTimeLimit';
  constructor(readonly limitNs: number) {
    super(`virtual time passed the run's limit of ${limitNs} ns`);
  }
}
/** Rebuild the heap once cancelled entries are more than half of it and at least this many. */
const COMPACT_MIN = 64;

/**
 * A binary heap ordered by (time, seq). Cancelled events stay in it until
 * they reach the top, with their closure dropped; when they outnumber the
 * live ones (a PRI timeout is armed and cancelled for every page fault, and
 * lies 10 ms ahead) the heap is rebuilt from the live entries, so it stays
 * small and holds no garbage. (time, seq) is a total order, so rebuilding
 * never changes which event runs next.
 */
export class Scheduler {
  private heap: Entry[] = [];
  private seq = 0;
  private _now = 0;
  private live = 0;
  private cancelled = 0;
  /** Events executed since creation (for reports and runaway guards). */
  executed = 0;
  private advanceObserver: ((before: number) => void) | undefined;

  /**
   * Call `fn` with the current time each time the clock is about to move
   * forward (undefined removes it; one observer at a time). Everything that
   * happened since the previous call happened at `before`, so a counter
   * sampler stamps what changed exactly (tools/scenario runs use it).
   */
  observeAdvance(fn: ((before: number) => void) | undefined): void {
    this.advanceObserver = fn;
  }

  private moveTo(time: number): void {
    if (time !== this._now && this.advanceObserver !== undefined) this.advanceObserver(this._now);
    this._now = time;
  }

  /**
   * Virtual time no event may pass: an event due later, or an advance()
   * beyond it, throws VirtualTimeLimit instead of running (default: none).
   */
  timeLimitNs = Number.POSITIVE_INFINITY;
  /** Set once the limit stopped the run. */
  limitReached = false;

  get now(): number {
    return this._now;
  }

  /** Number of events still waiting to run. */
  get pendingCount(): number {
    return this.live;
  }

  /** Run `fn` after `delayNs` of virtual time (0 = later at the current time). */
  schedule(delayNs: number, fn: () => void, label = ''): ScheduledEvent {
    if (!(delayNs >= 0) || !Number.isFinite(delayNs)) {
      throw new RangeError(`delay must be a finite non-negative number of ns: ${delayNs}`);
    }
    return this.scheduleAt(this._now + delayNs, fn, label);
  }

  scheduleAt(time: number, fn: () => void, label = ''): ScheduledEvent {
    if (!(time >= this._now) || !Number.isFinite(time)) {
      throw new RangeError(`cannot schedule at ${time}: now is ${this._now}`);
    }
    const e: Entry = { time, seq: this.seq++, label, pending: true, fn };
    this.push(e);
    this.live++;
    return e;
  }

  /** Cancel a pending event; returns false if it already ran or was cancelled. */
  cancel(ev: ScheduledEvent): boolean {
    const e = ev as Entry;
    if (!e.pending) return false;
    e.pending = false;
    e.fn = NOOP;
    this.live--;
    this.cancelled++;
    if (this.cancelled >= COMPACT_MIN && this.cancelled * 2 > this.heap.length) this.compact();
    return true;
  }

  /** Drop every cancelled entry and restore the heap order (Floyd's heapify). */
  private compact(): void {
    const h = this.heap;
    let n = 0;
    for (let i = 0; i < h.length; i++) {
      const e = h[i]!;
      if (e.pending) h[n++] = e;
    }
    h.length = n;
    this.cancelled = 0;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** Time of the next pending event, or undefined. */
  peekTime(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.time;
  }

  /** Run the next pending event; false when none is left. */
  step(): boolean {
    this.dropCancelled();
    const top = this.heap[0];
    if (top !== undefined && top.time > this.timeLimitNs) this.overLimit();
    const e = this.pop();
    if (e === undefined) return false;
    e.pending = false;
    this.live--;
    this.moveTo(e.time);
    this.executed++;
    e.fn();
    return true;
  }

  /** Run until no event is pending. `maxEvents` guards against a model that reschedules forever. */
  run(maxEvents = Number.POSITIVE_INFINITY): number {
    let n = 0;
    while (n < maxEvents && this.step()) n++;
    return n;
  }

  /**
   * Run events until virtual time `limit` (events at exactly `limit` run; the
   * clock then stands at `limit`), or until `predicate` holds (checked before
   * each event and after the last). Returns true if the predicate was met,
   * or for a time limit when every event up to it ran; false when
   * `maxEvents` stopped the run first (the clock then stays at the last event).
   */
  runUntil(limit: number | (() => boolean), maxEvents = Number.POSITIVE_INFINITY): boolean {
    let n = 0;
    if (typeof limit === 'number') {
      for (;;) {
        const t = this.peekTime();
        if (t === undefined || t > limit) break;
        // The guard stops us only while an event up to the limit is still due.
        if (n >= maxEvents) return false;
        this.step();
        n++;
      }
      if (limit > this._now) this.moveTo(limit);
      return true;
    }
    for (;;) {
      if (limit()) return true;
      if (n >= maxEvents || !this.step()) return limit();
      n++;
    }
  }

  /** Advance the clock with no events in between (a model charging a synchronous cost). */
  advance(ns: number): void {
    if (!(ns >= 0) || !Number.isFinite(ns)) {
      throw new RangeError(`advance must be a finite non-negative number of ns: ${ns}`);
    }
    const t = this.peekTime();
    const target = this._now + ns;
    if (target > this.timeLimitNs) this.overLimit();
    if (t !== undefined && t < target) this.runUntil(target);
    else this.moveTo(target);
  }

  private overLimit(): never {
    this.limitReached = true;
    throw new VirtualTimeLimit(this.timeLimitNs);
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && !this.heap[0]!.pending) {
      this.pop();
      this.cancelled--;
    }
  }

  private less(a: Entry, b: Entry): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!this.less(e, parent)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = e;
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let m = l;
      if (r < n && this.less(h[r]!, h[l]!)) m = r;
      if (!this.less(h[m]!, e)) break;
      h[i] = h[m]!;
      i = m;
    }
    h[i] = e;
  }
}
