import type { PageRequestMessage, PrgResponse } from '../../src/pci/ats-messages.ts';
import type { PriCapability } from '../../src/pci/caps/pri.ts';
import type { ScheduledEvent } from '../../src/sim/scheduler.ts';
import type { Counter, Counters } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import { FAULT_REASON } from './descriptor.ts';
import type { EnginePoint } from './faults.ts';
import { ENGINE_SITE_ACTIONS } from './points.ts';
import type { Timers } from './timers.ts';

const PAGE = 4096;
const PRG_INDICES = 512;

/** How a page request group ended for its waiter. */
export type PageOutcome = 'pending' | 'success' | 'invalid' | 'failure' | 'timeout' | 'stopped';

/** A page request group: what the engine waits on. */
export interface PageGroup {
  readonly pasid: number;
  readonly priv: boolean;
  readonly exec: boolean;
  readonly addr: number;
  readonly pages: number;
  readonly write: boolean;
  /** PRG index once sent, else -1. */
  prg: number;
  outcome: PageOutcome;
  /** Called once when the outcome is known (not for outcomes known at request time). */
  onDone: ((g: PageGroup) => void) | undefined;
  timeout: ScheduledEvent | undefined;
}

/** FAULT_REASON and fault name of a failed outcome. */
export function outcomeFault(o: PageOutcome): [number, string] {
  switch (o) {
    case 'invalid':
      return [FAULT_REASON.PRI_INVALID, 'PRI_INVALID'];
    case 'failure':
      return [FAULT_REASON.PRI_FAILURE, 'PRI_FAILURE'];
    case 'timeout':
      return [FAULT_REASON.PRI_TIMEOUT, 'PRI_TIMEOUT'];
    default:
      return [FAULT_REASON.PRI_STOPPED, 'PRI_STOPPED'];
  }
}

export interface PageRequestHost {
  readonly name: string;
  readonly requesterId: number;
  /** PciFunction.sendPageRequest: false when the function may not master. */
  send(msg: PageRequestMessage): boolean;
}

export interface PageRequestOptions {
  /** Virtual ns after which a group with no response fails (PRI_TIMEOUT). */
  timeoutNs: number;
}

/**
 * The Page Request Interface of the device (PCIe 10.4), driven by the PRI
 * capability's registers:
 * - a group of 1..n page requests shares a PRG index (the lowest free of
 *   0..511); the last one carries L=1;
 * - page requests outstanding never exceed the Outstanding Page Request
 *   Allocation software wrote; a group waits (FIFO) until credits return,
 *   and a group larger than the allocation is trimmed to it (its first pages);
 * - a PRG Response frees its group's credits and ends the group: Success,
 *   Invalid Request, or Response Failure. Response Failure sets RF, fails
 *   every group (the function expects no more responses) and halts page
 *   requests until a PRI Reset (or FLR);
 * - a response whose index (or PASID) matches no outstanding group sets UPRGI;
 * - a group with no response within `timeoutNs` fails PRI_TIMEOUT; if it was
 *   sent it stays outstanding (holding its credits) until its response or a
 *   PRI Reset, so a late response is still expected, not unexpected;
 * - clearing Enable fails the groups not yet sent; sent groups still await
 *   their responses (Stopped sets once they are all in). Reset (with Enable
 *   clear) drops every group: their waiters fail PRI_STOPPED.
 * Stop Markers are not sent: the device has no PASID-drain operation.
 */
export class PageRequests {
  /**
   * Sent groups by PRG index, and when each was sent (the order the failure
   * and reset paths end them in). An array of the 512 indices, not a Map: a
   * Map emptied by every response reallocates its table each time.
   */
  private readonly sent: (PageGroup | undefined)[] = new Array<PageGroup | undefined>(PRG_INDICES).fill(undefined);
  private readonly sentSeq = new Float64Array(PRG_INDICES);
  private nextSeq = 0;
  private readonly queue: PageGroup[] = [];
  private inUse = 0;
  private halted = false;
  readonly requests: Counter;
  readonly groups: Counter;
  readonly responses: Counter;
  readonly timeouts: Counter;
  readonly unexpected: Counter;
  private readonly timeoutLabel: string;

  constructor(
    private readonly host: PageRequestHost,
    private readonly pri: PriCapability,
    private readonly timers: Timers,
    private readonly tracer: Tracer,
    private readonly points: { request: EnginePoint; response: EnginePoint },
    counters: Counters,
    private readonly opts: PageRequestOptions,
  ) {
    const p = host.name;
    this.requests = counters.counter(`${p}.pri.requests`);
    this.groups = counters.counter(`${p}.pri.groups`);
    this.responses = counters.counter(`${p}.pri.responses`);
    this.timeouts = counters.counter(`${p}.pri.timeouts`);
    this.unexpected = counters.counter(`${p}.pri.unexpected`);
    this.timeoutLabel = `${p}.pri.timeout`;
  }

  /** Page requests sent and awaiting a response. */
  get outstanding(): number {
    return this.inUse;
  }

  /** Groups waiting for credits. */
  get queued(): number {
    return this.queue.length;
  }

  get isHalted(): boolean {
    return this.halted;
  }

  /** Whether a fault can become a page request now (else the outcome it would get). */
  usable(): PageOutcome {
    if (!this.pri.enabled || this.pri.allocation === 0) return 'stopped';
    if (this.halted) return 'failure';
    return 'pending';
  }

  /**
   * Ask for `pages` pages from `addr` (4 KiB aligned down). The returned group's
   * outcome is final at once when PRI cannot be used; otherwise `onDone` runs
   * when the response, a failure or the timeout ends it.
   */
  request(pasid: number, priv: boolean, exec: boolean, addr: number, pages: number, write: boolean, onDone: (g: PageGroup) => void): PageGroup {
    const n = Math.max(1, Math.min(pages, this.pri.allocation));
    const g: PageGroup = {
      pasid, priv, exec, addr: Math.floor(addr / PAGE) * PAGE, pages: n, write, prg: -1, outcome: 'pending', onDone, timeout: undefined,
    };
    const u = this.usable();
    if (u !== 'pending') {
      g.outcome = u;
      return g;
    }
    g.timeout = this.timers.after(this.opts.timeoutNs, () => this.timedOut(g), this.timeoutLabel);
    this.queue.push(g);
    this.kick();
    return g;
  }

  /** Send queued groups while credits and PRG indices allow (also when software raises the allocation). */
  kick(): void {
    while (this.queue.length > 0) {
      if (this.usable() !== 'pending') {
        for (const g of this.queue.splice(0)) this.finish(g, this.usable());
        return;
      }
      const g = this.queue[0]!;
      if (this.inUse + g.pages > this.pri.allocation) return;
      const prg = this.freeIndex();
      if (prg < 0) return;
      this.queue.shift();
      g.prg = prg;
      this.sent[prg] = g;
      this.sentSeq[prg] = this.nextSeq++;
      this.inUse += g.pages;
      this.pri.setOutstanding(this.inUse);
      this.groups.value++;
      // The hook's context only when a hook is armed to read it (one group per PRI fault).
      const rp = this.points.request;
      const dropped = rp.check(rp.armed ? { dev: this.host.name, pasid: g.pasid, prg, addr: g.addr } : undefined)?.kind === 'drop';
      for (let i = 0; i < g.pages; i++) {
        const msg: PageRequestMessage = {
          requesterId: this.host.requesterId,
          pasid: g.pasid,
          privileged: g.pasid >= 0 && g.priv,
          exec: g.pasid >= 0 && g.exec,
          addr: g.addr + i * PAGE,
          read: !g.write,
          write: g.write,
          last: i === g.pages - 1,
          prgIndex: prg,
        };
        this.requests.value++;
        if (this.tracer.wants('dma-engine.pri.request')) {
          this.tracer.trace('dma-engine.pri.request', this.host.name, {
            dev: this.host.name, pasid: g.pasid, prg, addr: msg.addr, write: g.write, last: msg.last,
          });
        }
        if (!dropped && !this.host.send(msg)) {
          // The function may not master: nothing left; no response will come.
          this.release(g);
          this.finish(g, 'stopped');
          break;
        }
      }
    }
  }

  /** The group sent with PRG index `prg` (any number: an index out of range has none). */
  private sentAt(prg: number): PageGroup | undefined {
    return prg >= 0 && prg < PRG_INDICES ? this.sent[prg] : undefined;
  }

  /** The sent groups, oldest first. */
  private sentGroups(): PageGroup[] {
    const out: PageGroup[] = [];
    for (const g of this.sent) if (g !== undefined) out.push(g);
    return out.sort((a, b) => this.sentSeq[a.prg]! - this.sentSeq[b.prg]!);
  }

  private freeIndex(): number {
    for (let i = 0; i < PRG_INDICES; i++) if (this.sent[i] === undefined) return i;
    return -1;
  }

  /** A PRG Response Message from the root complex. */
  receive(resp: PrgResponse): void {
    const pt = this.points.response;
    const act = pt.check(
      pt.armed ? { dev: this.host.name, pasid: resp.pasid, prg: resp.prgIndex, code: resp.code } : undefined,
      resp.code === 'failure' ? ENGINE_SITE_ACTIONS.dropDelayCorrupt : pt.actions,
    );
    if (act?.kind === 'drop') return;
    if (act?.kind === 'delay') {
      this.timers.after(act.ns, () => this.accept(resp), `${this.host.name}.pri.response`);
      return;
    }
    let r = resp;
    if (act?.kind === 'corrupt') r = { ...resp, prgIndex: (resp.prgIndex ^ act.xorLo) & (PRG_INDICES - 1) };
    if (act?.kind === 'fail') r = { ...resp, code: 'failure' };
    this.accept(r);
  }

  private accept(resp: PrgResponse): void {
    this.responses.value++;
    const g = this.sentAt(resp.prgIndex);
    const expected = g !== undefined && (resp.pasid < 0 || g.pasid < 0 || resp.pasid === g.pasid);
    if (this.tracer.wants('dma-engine.pri.response')) {
      this.tracer.trace('dma-engine.pri.response', this.host.name, {
        dev: this.host.name, pasid: resp.pasid, prg: resp.prgIndex, code: resp.code, expected,
      });
    }
    if (!expected || g === undefined) {
      this.unexpected.value++;
      this.pri.reportUnexpectedPrgIndex();
      return;
    }
    this.release(g);
    if (resp.code === 'failure') {
      this.pri.reportResponseFailure();
      this.halted = true;
      this.finish(g, 'failure');
      // No more responses are expected: every other group fails too.
      for (const other of this.sentGroups()) {
        this.release(other);
        this.finish(other, 'failure');
      }
      for (const q of this.queue.splice(0)) this.finish(q, 'failure');
      return;
    }
    this.finish(g, resp.code);
    this.kick();
  }

  private release(g: PageGroup): void {
    if (g.prg < 0 || this.sentAt(g.prg) !== g) return;
    this.sent[g.prg] = undefined;
    this.inUse -= g.pages;
    this.pri.setOutstanding(this.inUse);
  }

  private finish(g: PageGroup, outcome: PageOutcome): void {
    this.timers.cancel(g.timeout);
    g.timeout = undefined;
    if (g.outcome !== 'pending') return;
    g.outcome = outcome;
    const fn = g.onDone;
    g.onDone = undefined;
    fn?.(g);
  }

  private timedOut(g: PageGroup): void {
    g.timeout = undefined;
    this.timeouts.value++;
    const i = this.queue.indexOf(g);
    if (i >= 0) this.queue.splice(i, 1);
    this.finish(g, 'timeout');
  }

  /** Software changed PRI Enable. */
  enableChanged(enabled: boolean): void {
    if (!enabled) for (const q of this.queue.splice(0)) this.finish(q, 'stopped');
    else this.kick();
  }

  /** PRI Reset (with Enable clear): drop every group and the credit count; page requests may resume. */
  interfaceReset(): void {
    this.halted = false;
    const all = [...this.sentGroups(), ...this.queue.splice(0)];
    this.sent.fill(undefined);
    this.inUse = 0;
    this.pri.setOutstanding(0);
    for (const g of all) this.finish(g, 'stopped');
  }

  /** Device reset: as a PRI Reset, and waiters are not called back (the engine is being reset too). */
  reset(): void {
    for (const g of [...this.sentGroups(), ...this.queue]) {
      g.onDone = undefined;
      this.timers.cancel(g.timeout);
    }
    this.interfaceReset();
  }
}
