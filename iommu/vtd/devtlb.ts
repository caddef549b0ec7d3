/**
 * Device-TLB invalidation (VT-d spec §6.5.2.5, §6.5.2.6; PCIe ATS §10.3):
 * a device-TLB or PASID-based device-TLB invalidation descriptor becomes an
 * ATS Invalidation Request sent downstream to the device, and the unit
 * tracks it until the device's Invalidation Completion arrives.
 *
 * - Each request carries an ITag (0-31) free for that source-id; at most MIP
 *   (the descriptor's Max Invalidations Pending, 0 = 32) are outstanding per
 *   device, further ones wait in order for a tag.
 * - A completion names tags in a vector; a tag completes after CC messages
 *   (CC 0 = 8). A completion for a tag not outstanding is an Invalidation
 *   Completion Error (FSTS.ICE, IQERCD.ICESID).
 * - A request not completed within `timeoutNs` of virtual time is an
 *   Invalidation Time-out Error: the queue (inv-queue.ts) sets FSTS.ITE and
 *   IQERCD.ITESID, every outstanding and waiting request is dropped and the
 *   wait descriptors not yet completed are aborted.
 */
import { VTD_INJECTION_POINTS } from './points.ts';
import type { InjectionPoint } from '../../src/fault/injector.ts';
import type { AtsInvalidationRequest } from '../../src/pci/ats-messages.ts';
import type { ScheduledEvent } from '../../src/sim/scheduler.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';

/** Where invalidation requests go: the root complex (RootComplex.sendAtsInvalidation). */
export interface AtsInvalidationPort {
  sendAtsInvalidation(requesterId: number, req: AtsInvalidationRequest): boolean;
}

interface Pending {
  sid: number;
  req: AtsInvalidationRequest;
  /** Completion messages received for it. */
  received: number;
  timer: ScheduledEvent | undefined;
}

export interface DevTlbHost {
  readonly ctx: SimContext;
  readonly name: string;
  port(): AtsInvalidationPort | undefined;
  /** A request timed out (ITE): the queue reacts; this tracker has already dropped everything. */
  timedOut(sid: number): void;
  /** A completion named a tag that is not outstanding (ICE). */
  unexpectedCompletion(sid: number): void;
  /** Nothing is outstanding any more. */
  idle(): void;
}

const TAGS = 32;

export class DevTlbInvalidator {
  /** Outstanding requests by sid * 32 + itag. */
  private readonly outstanding = new Map<number, Pending>();
  private readonly perSid = new Map<number, number>();
  private readonly waiting = new Map<number, { req: Omit<AtsInvalidationRequest, 'itag'>; mip: number }[]>();
  private waitingCount = 0;
  private readonly point: InjectionPoint;
  private readonly cSent: Counter;
  private readonly cDone: Counter;
  private readonly cTimeouts: Counter;

  constructor(
    private readonly h: DevTlbHost,
    /** Virtual ns a device has to answer an invalidation request. */
    readonly timeoutNs: number,
  ) {
    this.point = h.ctx.faults.define(VTD_INJECTION_POINTS)['vtd.ats_inv_complete'];
    const c = h.ctx.counters;
    this.cSent = c.counter(`${h.name}.devtlb.requests`);
    this.cDone = c.counter(`${h.name}.devtlb.completions`);
    this.cTimeouts = c.counter(`${h.name}.devtlb.timeouts`);
  }

  /** Requests sent and not completed, plus those waiting for a tag. */
  get pending(): number {
    return this.outstanding.size + this.waitingCount;
  }

  /** Issue an invalidation to device `sid` (MIP from the descriptor; 0 means 32). */
  issue(sid: number, mip: number, req: Omit<AtsInvalidationRequest, 'itag'>): void {
    const limit = mip === 0 ? TAGS : mip;
    const q = this.waiting.get(sid);
    if ((this.perSid.get(sid) ?? 0) >= limit || (q !== undefined && q.length > 0)) {
      if (q === undefined) this.waiting.set(sid, [{ req, mip: limit }]);
      else q.push({ req, mip: limit });
      this.waitingCount++;
      return;
    }
    this.send(sid, req);
  }

  private send(sid: number, r: Omit<AtsInvalidationRequest, 'itag'>): void {
    let itag = 0;
    while (itag < TAGS && this.outstanding.has(sid * TAGS + itag)) itag++;
    const req: AtsInvalidationRequest = { ...r, itag };
    const p: Pending = { sid, req, received: 0, timer: undefined };
    const key = sid * TAGS + itag;
    this.outstanding.set(key, p);
    this.perSid.set(sid, (this.perSid.get(sid) ?? 0) + 1);
    p.timer = this.h.ctx.scheduler.schedule(this.timeoutNs, () => this.timeout(key), `${this.h.name}.devtlb.timeout`);
    this.cSent.value++;
    if (this.h.ctx.tracer.wants('vtd.devtlb.invalidate')) {
      this.h.ctx.tracer.trace('vtd.devtlb.invalidate', this.h.name, {
        sid, itag, pasid: req.pasid, global: req.global, addr: req.addr, size: BigInt(req.size),
      });
    }
    // Registered before sending: the device may complete it at once.
    this.h.port()?.sendAtsInvalidation(sid, req);
  }

  /** An Invalidation Completion Message from `rid` for the tags in `itagVector`. */
  completed(rid: number, itagVector: number, completionCount: number): void {
    const p = this.point;
    const a = p.check(p.armed ? { sid: rid, itags: itagVector } : undefined);
    if (a !== undefined && (a.kind === 'drop' || a.kind === 'fail')) return;
    if (a?.kind === 'delay') {
      this.h.ctx.scheduler.schedule(a.ns, () => this.complete(rid, itagVector, completionCount), `${this.h.name}.devtlb.complete`);
      return;
    }
    this.complete(rid, itagVector, completionCount);
  }

  private complete(rid: number, itagVector: number, completionCount: number): void {
    const cc = completionCount <= 0 || completionCount > 8 ? 8 : completionCount;
    for (let itag = 0; itag < TAGS; itag++) {
      if (((itagVector >>> itag) & 1) === 0) continue;
      const key = rid * TAGS + itag;
      const pend = this.outstanding.get(key);
      if (pend === undefined) {
        this.h.unexpectedCompletion(rid);
        continue;
      }
      if (++pend.received < cc) continue;
      this.finish(key, pend);
      this.cDone.value++;
      if (this.h.ctx.tracer.wants('vtd.devtlb.complete')) this.h.ctx.tracer.trace('vtd.devtlb.complete', this.h.name, { sid: rid, itag });
      this.next(rid);
    }
    if (this.pending === 0) this.h.idle();
  }

  private finish(key: number, p: Pending): void {
    this.outstanding.delete(key);
    if (p.timer !== undefined) this.h.ctx.scheduler.cancel(p.timer);
    const n = (this.perSid.get(p.sid) ?? 1) - 1;
    if (n > 0) this.perSid.set(p.sid, n);
    else this.perSid.delete(p.sid);
  }

  /** Send what waits for this device while it has tags to spare. */
  private next(sid: number): void {
    const q = this.waiting.get(sid);
    while (q !== undefined && q.length > 0 && (this.perSid.get(sid) ?? 0) < q[0]!.mip) {
      const w = q.shift()!;
      this.waitingCount--;
      this.send(sid, w.req);
    }
    if (q !== undefined && q.length === 0) this.waiting.delete(sid);
  }

  private timeout(key: number): void {
    const p = this.outstanding.get(key);
    if (p === undefined) return;
    p.timer = undefined;
    this.cTimeouts.value++;
    if (this.h.ctx.tracer.wants('vtd.devtlb.timeout')) {
      this.h.ctx.tracer.trace('vtd.devtlb.timeout', this.h.name, { sid: p.sid, itag: p.req.itag, waitedNs: this.timeoutNs });
    }
    this.dropAll();
    this.h.timedOut(p.sid);
  }

  /** Forget every outstanding and waiting request (their completions become unexpected). */
  dropAll(): void {
    for (const [k, p] of [...this.outstanding]) this.finish(k, p);
    this.waiting.clear();
    this.waitingCount = 0;
  }
}
