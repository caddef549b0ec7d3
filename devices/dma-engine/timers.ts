import type { ScheduledEvent, Scheduler } from '../../src/sim/scheduler.ts';

/** Sweep events that already ran out of the list once it holds this many more than at the last sweep. */
const SWEEP_SLACK = 32;

/**
 * The device's pending events on the machine's scheduler, kept so that a
 * reset (FLR) can cancel every one of them: nothing the device scheduled
 * before a reset runs after it.
 *
 * An event is scheduled with the caller's function itself (no wrapper
 * closure per event: a descriptor waits twice or more). Events that ran
 * stay in the list, marked not pending by the scheduler, until the list has
 * grown by SWEEP_SLACK since the last sweep; then those are dropped. So the
 * list stays within a constant of the events pending.
 */
export class Timers {
  /**
   * Events in [0, count); the array is never shortened (shortening gives up
   * its storage, which every push after a sweep would then allocate again).
   */
  private readonly live: (ScheduledEvent | undefined)[] = [];
  private count = 0;
  private sweptAt = 0;

  constructor(readonly scheduler: Scheduler) {}

  get now(): number {
    return this.scheduler.now;
  }

  /** Run `fn` after `ns` of virtual time. */
  after(ns: number, fn: () => void, label: string): ScheduledEvent {
    const ev = this.scheduler.schedule(Math.max(0, ns), fn, label);
    this.live[this.count++] = ev;
    if (this.count >= this.sweptAt + SWEEP_SLACK) this.sweep();
    return ev;
  }

  private sweep(): void {
    const live = this.live;
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const ev = live[i]!;
      if (ev.pending) live[n++] = ev;
    }
    // The slots past the pending ones let go of the events that ran.
    for (let i = n; i < this.count; i++) live[i] = undefined;
    this.count = n;
    this.sweptAt = n;
  }

  cancel(ev: ScheduledEvent | undefined): void {
    if (ev !== undefined && ev.pending) this.scheduler.cancel(ev);
  }

  cancelAll(): void {
    const live = this.live;
    for (let i = 0; i < this.count; i++) {
      const ev = live[i]!;
      if (ev.pending) this.scheduler.cancel(ev);
      live[i] = undefined;
    }
    this.count = 0;
    this.sweptAt = 0;
  }

  /** Events of this device still waiting to run. */
  get pending(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) if (this.live[i]!.pending) n++;
    return n;
  }
}
