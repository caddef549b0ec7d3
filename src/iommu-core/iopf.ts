import type { PciFunction } from '../pci/pci-function.ts';
import type { ScheduledEvent, Scheduler } from '../sim/scheduler.ts';
import type { Counter, Counters } from '../trace/counters.ts';
import type { Tracer } from '../trace/tracer.ts';
import type { IommuCore } from './core.ts';
import type { PageRequest, PageResponseCode } from './types.ts';
import { Reservoir } from '../trace/reservoir.ts';
import { EBUSY } from '../uapi/errno.ts';

/**
 * IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID (include/linux/iommu.h, iommu_fault_page_request.flags):
 * the response must carry the PASID. Kernel-internal, not in the uapi enum, but iommufd copies a
 * request's flags into the record it queues (iommufd_compose_fault_message), so VT-d requests
 * that carried a PASID show it there.
 */
export const IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID = 1 << 3;

/**
 * How a domain answers a fault group: call `respond` once, now or later (an
 * SVA domain resolves on the mm at once; an iommufd fault queue waits for
 * user space).
 */
export type IopfHandler = (dev: PciFunction, requests: readonly PageRequest[], respond: (code: PageResponseCode) => void) => void;

export interface IopfOptions {
  /** Virtual time between a group completing and its handler running (the workqueue hop). */
  serviceNs?: number;
  /** Partial requests kept per device before further ones poison their group. */
  maxPartial?: number;
}

interface PendingGroup {
  dev: PciFunction;
  requests: PageRequest[];
  reportedAt: number;
  /** The workqueue hop still to come (undefined once the handler ran). */
  event: ScheduledEvent | undefined;
  handler: IopfHandler | undefined;
  answered: boolean;
  /** Neighbours on the pending list while the group waits for its answer. */
  prev: PendingGroup | undefined;
  next: PendingGroup | undefined;
}

/**
 * The I/O page-fault path (Linux io-pgfault.c): page requests from a
 * device's IOMMU driver are collected per PRG index until the request marked
 * last, the group goes to the handler of the domain attached to its PASID
 * (or RID), and exactly one response goes back through the driver. A group
 * nobody can handle, or one that overflowed, is answered Invalid; nothing is
 * lost and nothing waits forever.
 */
export class IopfQueue {
  private readonly partial = new Map<PciFunction, PageRequest[]>();
  private readonly poisoned = new Map<PciFunction, Set<number>>();
  /**
   * Groups reported and not answered, oldest first: a list through the
   * groups themselves (a Map emptied by every answer reallocates its table
   * each time, and a PRI fault is one group).
   */
  private pendingHead: PendingGroup | undefined = undefined;
  private pendingTail: PendingGroup | undefined = undefined;
  private pendingCount = 0;
  /** Devices on the queue (iopf_queue_add_device gave them an iommu_fault_param). */
  private readonly devices = new Set<PciFunction>();
  private readonly serviceNs: number;
  private readonly maxPartial: number;
  private readonly reported: Counter;
  private readonly answered: Counter;
  private readonly invalid: Counter;
  /**
   * Service times (virtual ns) of answered groups, for latency reports:
   * exact count, mean, min and max, and a bounded sample (every value up to
   * 10,000 groups), so a run of millions of faults does not keep them all.
   */
  readonly latencies = new Reservoir(10_000);

  constructor(
    private readonly core: IommuCore,
    private readonly sched: Scheduler,
    private readonly tracer: Tracer,
    counters: Counters,
    opts: IopfOptions = {},
  ) {
    this.serviceNs = opts.serviceNs ?? 1000;
    this.maxPartial = opts.maxPartial ?? 256;
    this.reported = counters.counter('iopf.requests');
    this.answered = counters.counter('iopf.groups_answered');
    this.invalid = counters.counter('iopf.groups_invalid');
  }

  /**
   * iopf_queue_add_device(): the device gets its fault parameters and may
   * report page requests. -EBUSY if it is on the queue already.
   */
  addDevice(dev: PciFunction): number {
    if (this.devices.has(dev)) return -EBUSY;
    this.devices.add(dev);
    return 0;
  }

  /**
   * iopf_queue_remove_device(): its partial requests are freed, every group
   * still pending is answered Invalid, and it leaves the queue.
   */
  removeDevice(dev: PciFunction): void {
    if (!this.devices.has(dev)) return;
    this.flush(dev);
    this.partial.delete(dev);
    this.poisoned.delete(dev);
    this.devices.delete(dev);
  }

  /** Whether the device is on the queue (has an iommu_fault_param). */
  hasDevice(dev: PciFunction): boolean {
    return this.devices.has(dev);
  }

  /**
   * iommu_report_device_fault(): a driver hands over one page request. A
   * device that is not on the queue has no fault parameters: its groups are
   * answered Invalid (the err_bad_iopf path, iopf_error_response).
   */
  report(dev: PciFunction, req: PageRequest): void {
    this.reported.value++;
    if (this.tracer.wants('iopf.report')) {
      const bdf = dev.bdf;
      this.tracer.trace('iopf.report', bdf, { dev: bdf, pasid: req.pasid, grpid: req.grpid, addr: req.addr, last: req.last });
    }
    if (!this.devices.has(dev)) {
      if (req.last) this.respond(this.newGroup(dev, [req]), 'invalid');
      return;
    }
    if (!req.last) {
      const list = this.partial.get(dev) ?? [];
      if (list.length >= this.maxPartial) {
        this.poison(dev, req.grpid);
        return;
      }
      list.push(req);
      this.partial.set(dev, list);
      return;
    }
    const list = this.partial.get(dev);
    let requests: PageRequest[];
    if (list === undefined || list.length === 0) {
      // The common case, a one-request group: nothing partial to gather.
      requests = [req];
    } else {
      requests = list.filter((r) => r.grpid === req.grpid);
      requests.push(req);
      this.partial.set(dev, list.filter((r) => r.grpid !== req.grpid));
    }
    const group = this.newGroup(dev, requests);
    if (this.poisoned.get(dev)?.delete(req.grpid)) {
      this.respond(group, 'invalid');
      return;
    }
    const handler = this.core.domainForPasid(dev, req.pasid)?.iopfHandler;
    if (handler === undefined) {
      this.respond(group, 'invalid');
      return;
    }
    this.addPending(group);
    group.handler = handler;
    group.event = this.sched.schedule(this.serviceNs, () => this.handle(group), 'iopf.handle');
  }

  private newGroup(dev: PciFunction, requests: PageRequest[]): PendingGroup {
    return {
      dev, requests, reportedAt: this.sched.now, event: undefined, handler: undefined, answered: false,
      prev: undefined, next: undefined,
    };
  }

  private addPending(g: PendingGroup): void {
    g.prev = this.pendingTail;
    g.next = undefined;
    if (this.pendingTail === undefined) this.pendingHead = g;
    else this.pendingTail.next = g;
    this.pendingTail = g;
    this.pendingCount++;
  }

  /** Take `g` off the pending list if it is on it. */
  private removePending(g: PendingGroup): void {
    if (g.prev === undefined ? this.pendingHead !== g : g.prev.next !== g) return;
    if (g.prev === undefined) this.pendingHead = g.next;
    else g.prev.next = g.next;
    if (g.next === undefined) this.pendingTail = g.prev;
    else g.next.prev = g.prev;
    g.prev = undefined;
    g.next = undefined;
    this.pendingCount--;
  }

  /** The pending groups, oldest first (a copy: answering them edits the list). */
  private pendingGroups(): PendingGroup[] {
    const out: PendingGroup[] = [];
    for (let g = this.pendingHead; g !== undefined; g = g.next) out.push(g);
    return out;
  }

  /** The workqueue runs the group's handler. */
  private handle(group: PendingGroup): void {
    const handler = group.handler;
    group.event = undefined;
    group.handler = undefined;
    handler?.(group.dev, group.requests, (code) => this.respond(group, code));
  }

  /**
   * iopf_queue_flush_dev(): every group of `dev` reported so far has been
   * through its handler when this returns (a handler that answers later,
   * like an iommufd fault queue, has queued it). Drivers call it while
   * draining a PASID's page requests, before the PASID goes.
   */
  flushDev(dev: PciFunction): void {
    for (const g of this.pendingGroups()) {
      if (g.dev !== dev || g.event === undefined) continue;
      this.sched.cancel(g.event);
      this.handle(g);
    }
  }

  private poison(dev: PciFunction, grpid: number): void {
    let set = this.poisoned.get(dev);
    if (set === undefined) this.poisoned.set(dev, (set = new Set()));
    set.add(grpid);
  }

  /** Groups reported but not answered yet. */
  get outstanding(): number {
    return this.pendingCount;
  }

  private respond(group: PendingGroup, code: PageResponseCode): void {
    if (group.answered) return;
    group.answered = true;
    this.removePending(group);
    if (group.event !== undefined) this.sched.cancel(group.event);
    const last = group.requests[group.requests.length - 1]!;
    const dur = this.sched.now - group.reportedAt;
    this.latencies.add(dur);
    this.answered.value++;
    if (code !== 'success') this.invalid.value++;
    if (this.tracer.wants('iopf.response')) {
      const bdf = group.dev.bdf;
      this.tracer.trace('iopf.response', bdf, { dev: bdf, pasid: last.pasid, grpid: last.grpid, code, requests: group.requests.length }, dur);
    }
    this.core.driverOf(group.dev)?.pageResponse(group.dev, last, code);
  }

  /**
   * Answer every outstanding group of a device (or of one PASID of it) with
   * Invalid and forget its partial requests: used when a PASID is unbound,
   * an mm exits, or a fault queue closes.
   */
  flush(dev: PciFunction, pasid?: number): number {
    let n = 0;
    for (const g of this.pendingGroups()) {
      if (g.dev !== dev || (pasid !== undefined && g.requests[0]!.pasid !== pasid)) continue;
      this.respond(g, 'invalid');
      n++;
    }
    const list = this.partial.get(dev);
    if (list !== undefined) this.partial.set(dev, pasid === undefined ? [] : list.filter((r) => r.pasid !== pasid));
    return n;
  }
}
