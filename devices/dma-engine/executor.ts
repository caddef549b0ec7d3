import { encodeLayout } from '../../src/hw/layout.ts';
import type { PasidCapability } from '../../src/pci/caps/pasid.ts';
import type { PriCapability } from '../../src/pci/caps/pri.ts';
import type { ScheduledEvent } from '../../src/sim/scheduler.ts';
import type { Counter, Counters } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import { decodeDescriptor, type Decoded } from './decode.ts';
import {
  COMPLETION, COMPLETION_BYTES, DESC_BYTES, DESC_STATUS, FAULT_NAMES, FAULT_REASON, OPCODE, opcodeName, statusName,
} from './descriptor.ts';
import type { EnginePoint } from './faults.ts';
import { outcomeFault, type PageGroup, type PageRequests } from './page-requests.ts';
import { DMAE_ERROR } from './regs.ts';
import type { Timers } from './timers.ts';
import {
  failAccess, newAccess, RUN_DONE, RUN_FAULT, T_FAULT, T_LOST, T_OK, type Access, type DmaPath,
} from './translation.ts';
import type { ErrorReport, WorkQueue } from './work-queue.ts';

/** Virtual-time costs of the engine (ns). */
export interface EngineTiming {
  /** Dispatching a descriptor (and fetching it, for a ring slot). */
  setupNs: number;
  /** Per byte moved by each access (0.125: 8 GB/s per direction). */
  nsPerByte: number;
  /** A Translation Request round trip. */
  atsLatencyNs: number;
  /** How long a lost Translation Completion is waited for (PCIe completion timeout). */
  atsTimeoutNs: number;
  /** Page request rounds without progress before an access fails PRI_RETRIES. */
  maxPriRetries: number;
}

export interface ExecutorHost {
  readonly name: string;
  readonly timers: Timers;
  readonly tracer: Tracer;
  readonly path: DmaPath;
  readonly prs: PageRequests;
  readonly pasid: PasidCapability;
  readonly pri: PriCapability;
  readonly maxTransfer: number;
  readonly timing: EngineTiming;
  readonly recordPoint: EnginePoint;
  readonly deviceEnabled: boolean;
  raiseError(e: ErrorReport): void;
  /** The WQ's completion interrupt. */
  interrupt(wq: WorkQueue): void;
}

const PH_FETCH = 0;
const PH_EXEC = 1;
const PH_RECORD = 2;
const PH_DONE = 3;

/** One descriptor on its way through a WQ's engine. */
class Job {
  phase = PH_EXEC;
  /** Waiting for an event (a round trip, a response, its cost): nothing to run until it fires. */
  waiting = false;
  words: Uint32Array | undefined;
  d: Decoded | undefined;
  fetch: Access | undefined;
  steps: Access[] = [];
  step = 0;
  record: Access | undefined;
  errorRegister = false;
  status: number = DESC_STATUS.SUCCESS;
  reason = 0;
  fault = '';
  faultAddr = 0;
  faultWrite = false;
  bytes = 0;
  result = 0;
  info = 0;
  cost = 0;
  /** Fabric latency of the completion record's own write, waited before the descriptor completes. */
  recordLatency = 0;
  event: ScheduledEvent | undefined;
  readonly started: number;
  constructor(readonly wq: WorkQueue, readonly fromPortal: boolean, readonly epoch: number, now: number) {
    this.started = now;
  }
}

/**
 * Runs descriptors, one at a time per WQ, as events on the scheduler:
 * dispatch (setupNs) -> [ring fetch] -> decode and checks -> the data
 * accesses -> after their cost, the completion record -> the interrupt.
 * Each access runs synchronously while the ATC hits; a miss waits for a
 * Translation Request round trip (atsLatencyNs), a missing translation for
 * the page request group's response, then the access resumes where it
 * stopped. Data accesses happen at the start of the time they are charged;
 * the completion record and interrupt at its end. What the IOMMU charges an
 * access for its misses (table fetches and page-walk reads, see
 * TranslationAnswer.latencyNs and AtsTranslationCompletion.latencyNs) adds to
 * that cost; IOTLB and ATC hits add nothing. MEMMOVE reads the whole
 * source before writing (so overlapping buffers move correctly); BYTES of a
 * faulting MEMMOVE/FILL counts the bytes written, of a COMPARE the offset of
 * the first difference.
 */
export class Executor {
  readonly started: Counter;
  readonly succeeded: Counter;
  readonly failed: Counter;
  /** Event labels per WQ index, built once (not a template string per event). */
  private readonly labels: string[] = [];

  constructor(private readonly h: ExecutorHost, counters: Counters) {
    this.started = counters.counter(`${h.name}.descriptors`);
    this.succeeded = counters.counter(`${h.name}.desc.ok`);
    this.failed = counters.counter(`${h.name}.desc.failed`);
  }

  /** Start the WQ's next descriptor if the WQ is idle. */
  kick(wq: WorkQueue): void {
    if (wq.busy || !wq.enabled || !this.h.deviceEnabled) return;
    const q = wq.fifo.shift();
    if (q !== undefined) {
      const job = new Job(wq, true, wq.epoch, this.h.timers.now);
      job.words = q.words;
      wq.busy = true;
      this.wait(job, this.h.timing.setupNs, () => this.begin(job));
      return;
    }
    if (!wq.ringPending || wq.halted) return;
    const job = new Job(wq, false, wq.epoch, this.h.timers.now);
    job.phase = PH_FETCH;
    const a = newAccess(wq.ringSlotAddr, DESC_BYTES, false, new Uint8Array(DESC_BYTES));
    a.pasid = wq.policy.defaultPasid;
    a.priv = wq.policy.defaultPriv;
    job.fetch = a;
    wq.busy = true;
    this.wait(job, this.h.timing.setupNs, () => {
      if (a.pasid >= 0 && !this.h.pasid.pasidAllowed(a.pasid, a.priv)) {
        failAccess(a, FAULT_REASON.PASID_INVALID, 'PASID_INVALID', a.addr);
        this.fault(job, a);
        return;
      }
      this.drive(job);
    });
  }

  private wait(job: Job, ns: number, fn: () => void): void {
    job.waiting = true;
    job.event = this.h.timers.after(ns, () => {
      job.event = undefined;
      job.waiting = false;
      fn();
    }, this.labels[job.wq.index] ??= `${this.h.name}.wq${job.wq.index}`);
  }

  /** The descriptor's words are known: check them and plan the accesses. */
  private begin(job: Job): void {
    const wq = job.wq;
    const r = decodeDescriptor(job.words!, wq.policy, this.h.pasid, this.h.maxTransfer);
    const d = r.d;
    job.d = d;
    job.phase = PH_EXEC;
    this.started.value++;
    const tr = this.h.tracer;
    if (tr.wants('dma-engine.desc.start')) {
      tr.trace('dma-engine.desc.start', this.h.name, {
        dev: this.h.name, wq: wq.index, op: opcodeName(d.op), pasid: d.pasid, len: d.length,
      });
    }
    if (r.status !== DESC_STATUS.SUCCESS) {
      job.status = r.status;
      job.info = r.info;
      job.errorRegister = r.errorRegister;
      if (r.status === DESC_STATUS.CR_ADDR_INVALID) job.faultAddr = d.completion;
      this.toRecord(job);
      return;
    }
    const len = d.length;
    if (d.op === OPCODE.MEMMOVE) {
      const buf = wq.buffer(len);
      this.step(job, d.src, false, buf, 0);
      this.step(job, d.dst, true, buf, 0);
    } else if (d.op === OPCODE.FILL) {
      const buf = wq.buffer(len);
      for (let i = 0; i < len; i++) buf[i] = ((i & 7) < 4 ? d.patternLo >>> (8 * (i & 3)) : d.patternHi >>> (8 * (i & 3))) & 0xff;
      this.step(job, d.dst, true, buf, 0);
    } else if (d.op === OPCODE.COMPARE) {
      const buf = wq.buffer(2 * len);
      this.step(job, d.src, false, buf, 0);
      this.step(job, d.dst, false, buf, len);
    }
    job.phase = PH_EXEC;
    this.drive(job);
  }

  /** Plan one data access of the descriptor (a method, not a closure per descriptor). */
  private step(job: Job, addr: number, write: boolean, buf: Uint8Array, off: number): void {
    const d = job.d!;
    const a = newAccess(addr, d.length, write, buf, off);
    a.pasid = d.pasid;
    a.priv = d.priv;
    job.steps.push(a);
  }

  private current(job: Job): Access | undefined {
    if (job.waiting) return undefined;
    switch (job.phase) {
      case PH_FETCH:
        return job.fetch;
      case PH_EXEC:
        if (job.step < job.steps.length) return job.steps[job.step];
        this.execDone(job);
        return this.current(job);
      case PH_RECORD:
        return job.record;
      default:
        return undefined;
    }
  }

  private drive(job: Job): void {
    for (;;) {
      const a = this.current(job);
      if (a === undefined) return;
      const before = a.done;
      const r = this.h.path.run(a);
      // Bytes at the modelled bandwidth, plus what the IOMMU charged for misses (nothing for IOTLB/ATC hits).
      job.cost += (a.done - before) * this.h.timing.nsPerByte;
      this.chargeLatency(job, a);
      if (r === RUN_DONE) this.accessDone(job);
      else if (r === RUN_FAULT) this.fault(job, a);
      else {
        this.wait(job, job.cost + this.h.timing.atsLatencyNs, () => this.translated(job, a));
        job.cost = 0;
        return;
      }
    }
  }

  private translated(job: Job, a: Access): void {
    const t = this.h.path.translate(a);
    // The translation agent's walk and fetch time for this request, charged with the descriptor's next wait.
    this.chargeLatency(job, a);
    if (t === T_OK) return this.drive(job);
    if (t === T_FAULT) {
      this.fault(job, a);
      return this.drive(job);
    }
    if (t === T_LOST) {
      this.wait(job, this.h.timing.atsTimeoutNs, () => {
        failAccess(a, FAULT_REASON.ATS_TIMEOUT, 'ATS_TIMEOUT', a.missAddr);
        this.fault(job, a);
        this.drive(job);
      });
      return;
    }
    this.pageFault(job, a);
  }

  /** The translation refused the access: a page request round, if PRI allows. */
  private pageFault(job: Job, a: Access): void {
    const failNow = (reason: number) => {
      failAccess(a, reason, FAULT_NAMES[reason]!, a.missAddr);
      this.fault(job, a);
      this.drive(job);
    };
    if (!this.h.pri.enabled) return failNow(FAULT_REASON.ATS_NO_TRANSLATION);
    if (a.done !== a.progressAt) {
      a.progressAt = a.done;
      a.priRounds = 0;
    }
    if (a.priRounds >= this.h.timing.maxPriRetries) return failNow(FAULT_REASON.PRI_RETRIES);
    a.priRounds++;
    job.waiting = true;
    let called = false;
    const g = this.h.prs.request(a.pasid, a.priv, a.exec, a.missAddr, a.pages, a.write, (grp) => {
      called = true;
      this.paged(job, a, grp);
    });
    if (!called && g.outcome !== 'pending') this.paged(job, a, g);
  }

  private paged(job: Job, a: Access, g: PageGroup): void {
    this.wait(job, 0, () => {
      if (g.outcome === 'success') return this.drive(job);
      const [reason, name] = outcomeFault(g.outcome);
      failAccess(a, reason, name, a.missAddr);
      this.fault(job, a);
      this.drive(job);
    });
  }

  /**
   * Move the fabric latency an access was charged (IOMMU walks and fetches
   * on misses) into the descriptor's cost; the completion record's own goes
   * into recordLatency, waited before the descriptor completes.
   */
  private chargeLatency(job: Job, a: Access): void {
    const ns = a.latencyNs;
    if (ns === 0) return;
    a.latencyNs = 0;
    if (job.phase === PH_RECORD) job.recordLatency += ns;
    else job.cost += ns;
  }

  private accessDone(job: Job): void {
    if (job.phase === PH_FETCH) {
      const b = job.fetch!.buf;
      const words = new Uint32Array(DESC_BYTES / 4);
      for (let i = 0; i < words.length; i++) words[i] = (b[4 * i]! | (b[4 * i + 1]! << 8) | (b[4 * i + 2]! << 16) | (b[4 * i + 3]! << 24)) >>> 0;
      job.words = words;
      job.wq.advanceHead();
      this.begin(job);
    } else if (job.phase === PH_EXEC) {
      job.step++;
    } else if (job.phase === PH_RECORD) {
      const ns = job.recordLatency;
      job.recordLatency = 0;
      // A record write that hit costs no wait (the common case stays one event shorter).
      if (ns > 0) this.wait(job, ns, () => this.finish(job));
      else this.finish(job);
    }
  }

  private fault(job: Job, a: Access): void {
    const wq = job.wq;
    if (job.phase === PH_RECORD) {
      this.h.raiseError({ code: DMAE_ERROR.COMPLETION_WRITE_FAULT, wq: wq.index, opcode: job.d?.op, info: a.reason, addr: a.addr, write: true });
      job.fault = a.fault;
      this.finish(job);
      return;
    }
    if (job.phase === PH_FETCH) {
      // A ring slot could not be read: the WQ halts there (HEAD stays on the slot).
      this.h.raiseError({ code: DMAE_ERROR.RING_FETCH_FAULT, wq: wq.index, info: a.reason, addr: a.faultAddr });
      wq.halt();
      job.phase = PH_DONE;
      wq.busy = false;
      return;
    }
    job.status = DESC_STATUS.PAGE_FAULT;
    job.reason = a.reason;
    job.fault = a.fault;
    job.faultAddr = a.faultAddr;
    job.faultWrite = a.write;
    job.info = a.reason;
    job.bytes = a.write ? a.done : 0;
    this.toRecord(job);
  }

  /** Every data access is done: the result. */
  private execDone(job: Job): void {
    const d = job.d!;
    job.bytes = d.op === OPCODE.NOOP ? 0 : d.length;
    if (d.op === OPCODE.COMPARE) {
      const buf = job.steps[0]!.buf;
      for (let i = 0; i < d.length; i++) {
        if (buf[i] !== buf[d.length + i]) {
          job.status = DESC_STATUS.COMPARE_MISMATCH;
          job.result = 1;
          job.bytes = i;
          break;
        }
      }
    }
    this.toRecord(job);
  }

  /** After the cost so far, write the completion record (or report in the error register). */
  private toRecord(job: Job): void {
    this.wait(job, job.cost, () => {
      job.cost = 0;
      const d = job.d!;
      const ok = job.status === DESC_STATUS.SUCCESS || job.status === DESC_STATUS.COMPARE_MISMATCH;
      if (!d.rcr || job.errorRegister) {
        if (!ok) {
          this.h.raiseError({
            code: job.status, wq: job.wq.index, opcode: d.op, info: job.info, addr: job.faultAddr, write: job.faultWrite,
          });
        }
        return this.finish(job);
      }
      if (this.h.recordPoint.check({ dev: this.h.name, wq: job.wq.index, addr: d.completion })?.kind === 'fail') {
        this.h.raiseError({ code: DMAE_ERROR.COMPLETION_WRITE_FAULT, wq: job.wq.index, opcode: d.op, addr: d.completion, write: true });
        return this.finish(job);
      }
      const fa = job.faultAddr;
      const words = encodeLayout(COMPLETION, {
        STATUS: job.status,
        FAULT_WRITE: job.faultWrite ? 1 : 0,
        RESULT: job.result,
        FAULT_REASON: job.reason,
        BYTES: job.bytes,
        FAULT_ADDR_LO: fa % 0x1_0000_0000,
        FAULT_ADDR_HI: Math.floor(fa / 0x1_0000_0000),
        INFO: job.info,
      });
      const a = newAccess(d.completion, COMPLETION_BYTES, true, new Uint8Array(words.buffer));
      a.pasid = d.pasid;
      a.priv = d.priv;
      job.record = a;
      job.phase = PH_RECORD;
      this.drive(job);
    });
  }

  private finish(job: Job): void {
    job.phase = PH_DONE;
    const wq = job.wq;
    const d = job.d!;
    wq.busy = false;
    wq.completed(job.fromPortal, job.epoch);
    const ok = job.status === DESC_STATUS.SUCCESS || job.status === DESC_STATUS.COMPARE_MISMATCH;
    (ok ? this.succeeded : this.failed).value++;
    const tr = this.h.tracer;
    if (tr.wants('dma-engine.desc.complete')) {
      tr.trace('dma-engine.desc.complete', this.h.name, {
        dev: this.h.name, wq: wq.index, op: opcodeName(d.op), status: statusName(job.status), bytes: job.bytes, fault: job.fault,
      }, this.h.timers.now - job.started);
    }
    if (d.rci) this.h.interrupt(wq);
    this.kick(wq);
  }
}
