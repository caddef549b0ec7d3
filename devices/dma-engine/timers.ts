import type { ScheduledEvent, Scheduler } from '../../src/sim/scheduler.ts';

/**
 * The device's pending events on the machine's scheduler, kept so that a
 * reset (FLR) can cancel every one of them: nothing the device scheduled
 * before a reset runs after it.
 */
export class Timers {
  private readonly live = new Set<ScheduledEvent>();

  constructor(readonly scheduler: Scheduler) {}

  get now(): number {
    return this.scheduler.now;
  }

  /** Run `fn` after `ns` of virtual time. */
  after(ns: number, fn: () => void, label: string): ScheduledEvent {
    const ev: ScheduledEvent = this.scheduler.schedule(Math.max(0, ns), () => {
      this.live.delete(ev);
      fn();
    }, label);
    this.live.add(ev);
    return ev;
  }

  cancel(ev: ScheduledEvent | undefined): void {
    if (ev !== undefined && this.live.delete(ev)) this.scheduler.cancel(ev);
  }

  cancelAll(): void {
    for (const ev of this.live) this.scheduler.cancel(ev);
    this.live.clear();
  }

  get pending(): number {
    return this.live.size;
  }
}
