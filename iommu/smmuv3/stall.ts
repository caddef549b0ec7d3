/**
 * The stall fault model (§3.12.2 "Stall model", §4.7.1 CMD_RESUME, §4.7.2
 * CMD_STALL_TERM). With IDR0.STALL_MODEL == 0b00 a translation-related
 * fault of a stream configured to stall (CD.S for stage 1, STE.S2S for
 * stage 2) holds the transaction: the event is recorded with Stall = 1 and a
 * STAG, and the transaction waits for software's CMD_RESUME (retry, abort,
 * or terminate as the fault configuration says) or CMD_STALL_TERM.
 *
 * DMA completes synchronously in this framework (RootComplex.dma returns
 * the completion), so a stalled transaction waits inside its translate()
 * call: it runs the machine's scheduler (`runUntil`) until its STAG is
 * resumed or `timeoutNs` of virtual time passes, then retries or ends the
 * transaction. Everything software does meanwhile (the Event queue
 * interrupt, the fault handler, the command that resumes) runs as scheduler
 * events inside that wait. The timeout stands in for the system's watchdog:
 * a transaction nobody resumes is aborted. Stalls are never used for ATS
 * Translation Requests or Translated transactions.
 */
import type { Counter } from '../../src/trace/counters.ts';
import type { SmmuCore } from './core.ts';
import { SMMUV3_SITE_ACTIONS } from './points.ts';

export const STALL_PENDING = 0;
export const STALL_RETRY = 1;
/** CMD_RESUME with Ac = 0, Ab = 0: terminate as the fault configuration says (CD.A: abort or RAZ/WI). */
export const STALL_TERMINATE = 2;
export const STALL_ABORT = 3;
export const STALL_TIMEOUT = 4;

export class Stall {
  result = STALL_PENDING;
  constructor(
    readonly sid: number,
    readonly stag: number,
  ) {}
}

export interface StallCounters {
  stalls: Counter;
  resumes: Counter;
  timeouts: Counter;
}

export class StallTable {
  private readonly byTag = new Map<number, Stall>();
  private nextTag = 0;

  constructor(
    private readonly core: SmmuCore,
    private readonly timeoutNs: number,
    private readonly c: StallCounters,
  ) {}

  /** Stalled transactions now. */
  get size(): number {
    return this.byTag.size;
  }

  /** A new stall with a free STAG, or null when IDR5.STALL_MAX are already held. */
  begin(sid: number): Stall | null {
    if (this.byTag.size >= this.core.features.stallMax) return null;
    let tag = this.nextTag;
    while (this.byTag.has(tag)) tag = (tag + 1) & 0xffff;
    this.nextTag = (tag + 1) & 0xffff;
    const st = new Stall(sid, tag);
    this.byTag.set(tag, st);
    this.c.stalls.value++;
    return st;
  }

  /** The stall could not be reported (no event recorded): forget it. */
  cancel(st: Stall): void {
    this.byTag.delete(st.stag);
  }

  /** Wait (running the scheduler) until the stall is resumed, terminated or times out; returns STALL_*. */
  wait(st: Stall): number {
    const sched = this.core.scheduler;
    const timer = sched.schedule(this.timeoutNs, () => {
      if (st.result !== STALL_PENDING) return;
      st.result = STALL_TIMEOUT;
      this.c.timeouts.value++;
      this.trace(st, 'timeout');
    }, 'smmuv3.stall-timeout');
    sched.runUntil(() => st.result !== STALL_PENDING);
    sched.cancel(timer);
    this.byTag.delete(st.stag);
    // A run that ran out of events cannot leave it pending (the timer is one), but be safe.
    if (st.result === STALL_PENDING) st.result = STALL_ABORT;
    return st.result;
  }

  /** CMD_RESUME (§4.7.1): Ac = 1 retry; Ac = 0 terminate (Ab = 1: abort). Unknown STAGs are ignored. */
  resume(sid: number, stag: number, ac: number, ab: number): boolean {
    const st = this.byTag.get(stag);
    if (st === undefined || st.sid !== sid || st.result !== STALL_PENDING) return false;
    const a = this.check('resume', sid, stag, ac === 0 && ab === 1); // failing an abort changes nothing
    if (a === 'drop') return false;
    st.result = a === 'fail' ? STALL_ABORT : ac === 1 ? STALL_RETRY : ab === 1 ? STALL_ABORT : STALL_TERMINATE;
    this.c.resumes.value++;
    this.trace(st, st.result === STALL_RETRY ? 'retry' : st.result === STALL_ABORT ? 'abort' : 'terminate');
    return true;
  }

  /** CMD_STALL_TERM (§4.7.2): every stalled transaction of the StreamID is aborted. */
  terminateAll(sid: number): number {
    let n = 0;
    for (const st of this.byTag.values()) {
      if (st.sid !== sid || st.result !== STALL_PENDING) continue;
      if (this.check('term', sid, st.stag, true) === 'drop') continue;
      st.result = STALL_ABORT;
      this.trace(st, 'stall-term');
      n++;
    }
    return n;
  }

  /** Reset: every stalled transaction is aborted. */
  reset(): void {
    for (const st of this.byTag.values()) if (st.result === STALL_PENDING) st.result = STALL_ABORT;
  }

  /** The injection at this hit; `aborts` when the command aborts anyway, so only a drop would change it. */
  private check(op: string, sid: number, stag: number, aborts: boolean): string | undefined {
    const pt = this.core.points.stall;
    return pt.check(pt.armed ? { op, sid, stag } : undefined, aborts ? SMMUV3_SITE_ACTIONS.dropOnly : pt.actions)?.kind;
  }

  trace(st: Stall, action: string): void {
    this.core.tracer.trace('smmuv3.stall', this.core.source, { sid: st.sid, stag: st.stag, action });
  }
}
