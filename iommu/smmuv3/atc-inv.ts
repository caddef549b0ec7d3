/**
 * ATC invalidation (§3.9.1.2 "ATS and TLB invalidation", §4.5.1
 * CMD_ATC_INV, PCIe Base §10.3): each CMD_ATC_INV becomes an ATS
 * Invalidation Request to the endpoint whose requester ID is the command's
 * StreamID, and stays outstanding until the endpoint's Invalidation
 * Completion for its ITag arrives. A CMD_SYNC completes only once every
 * invalidation issued before it has completed (cmdq.ts waits on
 * `pendingUpTo`).
 *
 * - ITags: 32 per StreamID (PCIe 10.3.1); an invalidation finding none free
 *   waits, in order, until one is released.
 * - A completion names tags in a vector; a tag completes after as many
 *   completion messages as their Completion Count says (CC 0 = 8). A
 *   completion for a tag that is not outstanding is ignored (counted).
 * - When a CMD_SYNC gives up waiting (CERROR_ATC_INV_SYNC), the invalidations
 *   it waited for are abandoned: their tags are free again and a late
 *   completion is ignored, so repeating the CMD_SYNC (as Linux's
 *   arm_smmu_cmdq_skip_err does) completes.
 */
import type { AtsInvalidationRequest } from '../../src/pci/ats-messages.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { SmmuCore } from './core.ts';

const TAGS = 32;

interface PendingInv {
  readonly sid: number;
  readonly seq: number;
  readonly req: AtsInvalidationRequest;
  itag: number;
  received: number;
  /** Sent downstream and not yet completed or abandoned. */
  live: boolean;
}

export interface AtcInvCounters {
  requests: Counter;
  completions: Counter;
  unexpected: Counter;
  abandoned: Counter;
}

export class AtcInvalidator {
  /** Sequence number of the last invalidation issued. */
  seq = 0;
  /** Called when invalidations complete (the command queue re-checks a waiting CMD_SYNC). */
  onProgress: () => void = () => {};
  private readonly tagsInUse = new Map<number, number>();
  private readonly byTag = new Map<number, PendingInv>();
  private readonly waiting: PendingInv[] = [];

  constructor(
    private readonly core: SmmuCore,
    private readonly c: AtcInvCounters,
  ) {}

  /** CMD_ATC_INV: invalidate [addr, addr+size) for `pasid` (-1: every PASID) at endpoint `sid`. */
  issue(sid: number, pasid: number, global: boolean, addr: number, size: number): void {
    const p: PendingInv = { sid, seq: ++this.seq, req: { itag: -1, pasid, global, addr, size }, itag: -1, received: 0, live: false };
    this.c.requests.value++;
    if (!this.trySend(p)) this.waiting.push(p);
  }

  /** Is any invalidation with sequence number <= seq still outstanding or waiting for a tag? */
  pendingUpTo(seq: number): boolean {
    for (const p of this.byTag.values()) if (p.seq <= seq) return true;
    for (const p of this.waiting) if (p.seq <= seq) return true;
    return false;
  }

  /** An Invalidation Completion Message from endpoint `rid` (PCIe 10.3.2). */
  completed(rid: number, itagVector: number, cc: number): void {
    const pt = this.core.points.atcInvComplete;
    const a = pt.check(pt.armed ? { sid: rid, itags: itagVector } : undefined);
    if (a?.kind === 'fail' || a?.kind === 'drop') return;
    if (a?.kind === 'delay') {
      this.core.scheduler.schedule(a.ns, () => this.take(rid, itagVector >>> 0, cc), 'smmuv3.atc-inv-complete');
      return;
    }
    this.take(rid, itagVector >>> 0, cc);
  }

  private take(rid: number, vector: number, cc: number): void {
    const need = cc === 0 ? 8 : cc;
    for (let t = 0; t < TAGS; t++) {
      if ((vector & (1 << t)) === 0) continue;
      const p = this.byTag.get(rid * TAGS + t);
      if (p === undefined) {
        this.c.unexpected.value++;
        continue;
      }
      if (++p.received < need) continue;
      this.c.completions.value++;
      this.trace('complete', p);
      this.release(p);
    }
    this.onProgress();
  }

  /** A CMD_SYNC timed out: forget every invalidation up to `seq`. Returns how many. */
  abandon(seq: number): number {
    let n = 0;
    for (const p of [...this.byTag.values()]) {
      if (p.seq > seq) continue;
      this.trace('abandon', p);
      this.release(p);
      n++;
    }
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (this.waiting[i]!.seq <= seq) {
        this.waiting.splice(i, 1);
        n++;
      }
    }
    this.c.abandoned.value += n;
    return n;
  }

  reset(): void {
    this.byTag.clear();
    this.tagsInUse.clear();
    this.waiting.length = 0;
  }

  /** Outstanding (sent) invalidations, for tests and traces. */
  get outstanding(): number {
    return this.byTag.size;
  }

  private trySend(p: PendingInv): boolean {
    const used = this.tagsInUse.get(p.sid) ?? 0;
    if (used === 0xffff_ffff) return false;
    let t = 0;
    while ((used & (1 << t)) !== 0) t++;
    this.tagsInUse.set(p.sid, (used | (1 << t)) >>> 0);
    p.itag = t;
    p.req.itag = t;
    p.live = true;
    this.byTag.set(p.sid * TAGS + t, p);
    this.trace('send', p);
    const pt = this.core.points.atcInv;
    const a = pt.check(pt.armed ? { sid: p.sid, itag: t, pasid: p.req.pasid, addr: p.req.addr } : undefined);
    if (a?.kind === 'fail' || a?.kind === 'drop') return true; // lost: the CMD_SYNC will time out
    if (a?.kind === 'delay') {
      this.core.scheduler.schedule(a.ns, () => this.deliver(p), 'smmuv3.atc-inv');
      return true;
    }
    this.deliver(p);
    return true;
  }

  private deliver(p: PendingInv): void {
    if (!p.live) return;
    // An endpoint that is not there answers nothing: the CMD_SYNC times out.
    this.core.downstream?.sendAtsInvalidation(p.sid, { ...p.req });
  }

  private release(p: PendingInv): void {
    p.live = false;
    this.byTag.delete(p.sid * TAGS + p.itag);
    const left = ((this.tagsInUse.get(p.sid) ?? 0) & ~(1 << p.itag)) >>> 0;
    if (left === 0) this.tagsInUse.delete(p.sid);
    else this.tagsInUse.set(p.sid, left);
    const i = this.waiting.findIndex((w) => w.sid === p.sid);
    if (i >= 0) this.trySend(this.waiting.splice(i, 1)[0]!);
  }

  private trace(what: string, p: PendingInv): void {
    const t = this.core.tracer;
    if (!t.wants('smmuv3.atc.inv')) return;
    t.trace('smmuv3.atc.inv', this.core.source, {
      what, sid: p.sid, ssid: p.req.pasid, itag: p.itag, addr: p.req.addr, size: BigInt(p.req.size), global: p.req.global,
    });
  }
}
