import type { AtsInvalidationRequest } from '../../src/pci/ats-messages.ts';
import type { AtsCapability } from '../../src/pci/caps/ats.ts';
import type { Counter, Counters } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import type { Atc } from './atc.ts';
import type { EnginePoint } from './faults.ts';
import type { Timers } from './timers.ts';

export interface InvalidationHost {
  readonly name: string;
  /** PciFunction.sendInvalidationCompletion. */
  complete(itagVector: number, completionCount: number): void;
}

/**
 * ATS Invalidation Requests at the device (PCIe 10.3). The matching ATC
 * entries are dropped when the request arrives (no DMA of the model is ever
 * in flight across events, so nothing can still be using them); the
 * Invalidation Completion (CC = 1, the request's ITag) is sent `delayNs`
 * later. At most the ATS capability's Invalidate Queue Depth requests are
 * in process at once; the spec leaves more than that to the translation
 * agent's care, and this model queues the excess (FIFO) instead of dropping
 * it, counting `ats.inv-overflow`. Requests received while ATS is disabled
 * are answered too (the ATC holds nothing then).
 */
export class InvalidationQueue {
  private inProcess = 0;
  private readonly backlog: AtsInvalidationRequest[] = [];
  readonly requests: Counter;
  readonly overflow: Counter;
  readonly completions: Counter;

  constructor(
    private readonly host: InvalidationHost,
    private readonly atc: Atc,
    private readonly ats: AtsCapability,
    private readonly timers: Timers,
    private readonly tracer: Tracer,
    private readonly point: EnginePoint,
    counters: Counters,
    private readonly delayNs: number,
  ) {
    this.requests = counters.counter(`${host.name}.atc.invalidate`);
    this.overflow = counters.counter(`${host.name}.ats.inv-overflow`);
    this.completions = counters.counter(`${host.name}.ats.inv-complete`);
  }

  /** Requests received whose completion has not been sent yet. */
  get pending(): number {
    return this.inProcess + this.backlog.length;
  }

  receive(req: AtsInvalidationRequest): void {
    this.requests.value++;
    const all = req.pasid < 0 || (req.global && this.ats.globalInvalidateSupported);
    const dropped = this.atc.invalidate(req.pasid, all, req.addr, req.size);
    this.tracer.trace('dma-engine.atc.invalidate', this.host.name, {
      dev: this.host.name, itag: req.itag, pasid: req.pasid, global: req.global, addr: req.addr, size: BigInt(req.size), dropped,
    });
    if (this.inProcess >= this.ats.invalidateQueueDepth) {
      this.overflow.value++;
      this.backlog.push(req);
      return;
    }
    this.start(req);
  }

  private start(req: AtsInvalidationRequest): void {
    this.inProcess++;
    const act = this.point.check({ dev: this.host.name, itag: req.itag, pasid: req.pasid });
    const delay = this.delayNs + (act?.kind === 'delay' ? act.ns : 0);
    const drop = act?.kind === 'drop';
    this.timers.after(delay, () => {
      this.inProcess--;
      if (!drop) {
        this.completions.value++;
        this.host.complete((1 << (req.itag & 31)) >>> 0, 1);
      }
      const next = this.backlog.shift();
      if (next !== undefined) this.start(next);
    }, `${this.host.name}.ats.inv-complete`);
  }

  /** Device reset: requests in process are forgotten (their completions never come). */
  reset(): void {
    this.inProcess = 0;
    this.backlog.length = 0;
  }
}
