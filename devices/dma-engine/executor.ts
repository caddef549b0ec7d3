import { setBits } from '../../src/hw/layout.ts';
import type { PasidCapability } from '../../src/pci/caps/pasid.ts';
import type { PriCapability } from '../../src/pci/caps/pri.ts';
import type { Counter, Counters } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import { decodeDescriptor } from './decode.ts';
import {
  COMPLETION, COMPLETION_BYTES, DESC_BYTES, DESC_STATUS, FAULT_NAMES, FAULT_REASON, OPCODE, opcodeName, statusName,
} from './descriptor.ts';
import type { EnginePoint } from './faults.ts';
import { Job, Phase, Stage } from './job.ts';
import { outcomeFault, type PageGroup, type PageRequests } from './page-requests.ts';
import { DMAE_ERROR } from './regs.ts';
import type { Timers } from './timers.ts';
import {
  failAccess, resetAccess, RUN_DONE, RUN_FAULT, T_FAULT, T_LOST, T_OK, type Access, type DmaPath,
} from './translation.ts';
import type { ErrorReport, WorkQueue } from './work-queue.ts';
import { young } from '../../src/lib/young.ts';

const CR = COMPLETION.fields;

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

/**
 * Runs descriptors, one at a time per WQ, as a state machine over
 * scheduler events (Job.phase; RUNNING moves bytes, every other phase
 * waits):
 *
 *   kick ─► DISPATCH ─(setupNs)─┬─ portal ──────────────────────► decode
 *                               └─ ring: RUNNING, stage FETCH ─done─► decode
 *   decode ─ refused ─────────────────────────────────────────► SETTLING
 *          └ ok ─► RUNNING, stage DATA (step 0..n) ─all done─► SETTLING
 *   SETTLING ─(cost)─┬─ no record, or the error register ─────────► DONE
 *                    └─ RUNNING, stage RECORD ─done─► [RECORD_LATENCY] ─► DONE
 *
 *   RUNNING ─ATC miss─► TRANSLATING ─(cost + atsLatencyNs)─► translate:
 *     usable ─► RUNNING (the access resumes where it stopped)
 *     refused ─► fault       lost ─► TRANSLATION_LOST ─(atsTimeoutNs)─► fault
 *     no permission ─► PAGE_REQUEST ─(group ends)─► PAGE_RESPONSE ─(0)─► RUNNING | fault
 *   fault: FETCH ─► the WQ halts, DONE; DATA ─► PAGE_FAULT, SETTLING; RECORD ─► error register, DONE
 *
 * DONE interrupts (RCI) and kicks the WQ's next descriptor. Each access
 * runs synchronously while the ATC hits, so the common case (warm ATC, no
 * fault) is two events: DISPATCH and SETTLING. Data accesses happen at the
 * start of the time they are charged; the completion record and interrupt
 * at its end. What the IOMMU charges an access for its misses (table
 * fetches and page-walk reads, see TranslationAnswer.latencyNs and
 * AtsTranslationCompletion.latencyNs) adds to that cost; IOTLB and ATC hits
 * add nothing. MEMMOVE reads the whole source before writing (so
 * overlapping buffers move correctly); BYTES of a faulting MEMMOVE/FILL
 * counts the bytes written, of a COMPARE the offset of the first difference.
 */
export class Executor {
  readonly started: Counter;
  readonly succeeded: Counter;
  readonly failed: Counter;
  /** Event labels per WQ index, built once (not a template string per event). */
  private readonly labels: string[] = [];
  /** The one handler of every job's events (Job.onTimer calls it). */
  private readonly fired = (job: Job): void => this.timerFired(job);

  constructor(private readonly h: ExecutorHost, counters: Counters) {
    this.started = counters.counter(`${h.name}.descriptors`);
    this.succeeded = counters.counter(`${h.name}.desc.ok`);
    this.failed = counters.counter(`${h.name}.desc.failed`);
  }

  /** Start the WQ's next descriptor if the WQ is idle: queued portal descriptors first, then the ring slot at HEAD. */
  kick(wq: WorkQueue): void {
    if (wq.busy || !wq.enabled || !this.h.deviceEnabled) return;
    const q = wq.fifo.shift();
    if (q === undefined && (!wq.ringPending || wq.halted)) return;
    // The WQ's last job once it completed (nothing refers to it then), else a new one.
    const job = wq.spare ?? new Job(wq, this.fired);
    wq.spare = undefined;
    job.begin(q !== undefined, wq.epoch, this.h.timers.now);
    if (q !== undefined) {
      job.words = q.words;
    } else {
      // The slot is read in the WQ's default address space.
      const a = job.fetch;
      resetAccess(a, wq.ringSlotAddr, DESC_BYTES, false, a.buf);
      a.pasid = wq.policy.defaultPasid;
      a.priv = wq.policy.defaultPriv;
      job.access = a;
    }
    wq.busy = true;
    this.wait(job, this.h.timing.setupNs, Phase.DISPATCH);
  }

  // --- waiting ---------------------------------------------------------------

  /** Enter a waiting phase; its event comes back to timerFired. */
  private wait(job: Job, ns: number, phase: Phase): void {
    job.phase = phase;
    this.h.timers.after(ns, job.onTimer, this.labels[job.wq.index] ??= `${this.h.name}.wq${job.wq.index}`);
  }

  /** A job's wait is over: the phase it waited in says what comes next; then it runs if it may. */
  private timerFired(job: Job): void {
    switch (job.phase) {
      case Phase.DISPATCH:
        this.dispatched(job);
        break;
      case Phase.TRANSLATING:
        this.translationCompleted(job);
        break;
      case Phase.TRANSLATION_LOST:
        this.failAccess(job, FAULT_REASON.ATS_TIMEOUT);
        break;
      case Phase.PAGE_RESPONSE:
        this.pageResponse(job);
        break;
      case Phase.SETTLING:
        this.settled(job);
        break;
      case Phase.RECORD_LATENCY:
        this.complete(job);
        break;
      default:
        throw new Error(`${this.h.name}: an event for a job in phase ${job.phase}`);
    }
    this.run(job);
  }

  // --- running accesses --------------------------------------------------------

  /** Run the stage's accesses while the job is RUNNING: until one misses the ATC, faults, or the stage ends. */
  private run(job: Job): void {
    while (job.phase === Phase.RUNNING) {
      const a = job.access!;
      const before = a.done;
      const r = this.h.path.run(a);
      // Bytes at the modelled bandwidth, plus what the IOMMU charged for misses (nothing for IOTLB/ATC hits).
      job.cost += (a.done - before) * this.h.timing.nsPerByte;
      this.chargeLatency(job, a);
      if (r === RUN_DONE) this.accessDone(job);
      else if (r === RUN_FAULT) this.accessFaulted(job, a);
      else {
        // An ATC miss: the Translation Request goes out; what the job owed so far is paid with its round trip.
        this.wait(job, job.cost + this.h.timing.atsLatencyNs, Phase.TRANSLATING);
        job.cost = 0;
      }
    }
  }

  /**
   * Move the fabric latency an access was charged (IOMMU walks and fetches
   * on misses) into what the job owes; the completion record's own goes
   * into recordLatency, waited before the descriptor completes.
   */
  private chargeLatency(job: Job, a: Access): void {
    const ns = a.latencyNs;
    if (ns === 0) return;
    a.latencyNs = 0;
    if (job.stage === Stage.RECORD) job.recordLatency += ns;
    else job.cost += ns;
  }

  /** The current access moved all its bytes. */
  private accessDone(job: Job): void {
    switch (job.stage) {
      case Stage.FETCH:
        // The slot's bytes landed in the job's words (the fetch buffer is their bytes).
        job.words = job.slotWords;
        job.wq.advanceHead();
        this.decode(job);
        return;
      case Stage.DATA:
        if (++job.step < job.stepCount) job.access = job.pool[job.step];
        else this.dataDone(job);
        return;
      case Stage.RECORD: {
        const ns = job.recordLatency;
        job.recordLatency = 0;
        // A record write that hit costs no wait (the common case stays one event shorter).
        if (ns > 0) this.wait(job, ns, Phase.RECORD_LATENCY);
        else this.complete(job);
      }
    }
  }

  /** The current access failed (its reason, name and address are in it). */
  private accessFaulted(job: Job, a: Access): void {
    const wq = job.wq;
    switch (job.stage) {
      case Stage.FETCH:
        // A ring slot could not be read: the WQ halts there (HEAD stays on the slot).
        this.h.raiseError({ code: DMAE_ERROR.RING_FETCH_FAULT, wq: wq.index, info: a.reason, addr: a.faultAddr });
        wq.halt();
        job.phase = Phase.DONE;
        wq.busy = false;
        return;
      case Stage.DATA:
        job.outcome.pageFault(a);
        this.settle(job);
        return;
      case Stage.RECORD:
        this.h.raiseError({ code: DMAE_ERROR.COMPLETION_WRITE_FAULT, wq: wq.index, opcode: job.d?.op, info: a.reason, addr: a.addr, write: true });
        job.outcome.fault = a.fault;
        this.complete(job);
    }
  }

  /** The current access fails for `reason` at the address it missed. */
  private failAccess(job: Job, reason: number): void {
    const a = job.access!;
    failAccess(a, reason, FAULT_NAMES[reason]!, a.missAddr);
    this.accessFaulted(job, a);
  }

  // --- translation and page requests ---------------------------------------------

  /** The Translation Request's round trip is over: the completion fills the ATC, or says why not. */
  private translationCompleted(job: Job): void {
    const a = job.access!;
    const t = this.h.path.translate(a);
    // The translation agent's walk and fetch time for this request, charged with the job's next wait.
    this.chargeLatency(job, a);
    if (t === T_OK) job.phase = Phase.RUNNING;
    else if (t === T_FAULT) this.accessFaulted(job, a);
    else if (t === T_LOST) this.wait(job, this.h.timing.atsTimeoutNs, Phase.TRANSLATION_LOST);
    else this.pageRequest(job, a);
  }

  /** The translation refused the access: a page request round, if PRI allows. */
  private pageRequest(job: Job, a: Access): void {
    if (!this.h.pri.enabled) return this.failAccess(job, FAULT_REASON.ATS_NO_TRANSLATION);
    if (a.done !== a.progressAt) {
      a.progressAt = a.done;
      a.priRounds = 0;
    }
    if (a.priRounds >= this.h.timing.maxPriRetries) return this.failAccess(job, FAULT_REASON.PRI_RETRIES);
    a.priRounds++;
    job.phase = Phase.PAGE_REQUEST;
    job.onPageGroup ??= young((g: PageGroup) => this.pageGroupEnded(job, g));
    const g = this.h.prs.request(a.pasid, a.priv, a.exec, a.missAddr, a.pages, a.write, job.onPageGroup);
    // An outcome known at once (PRI stopped or halted) is not called back.
    if (job.phase === Phase.PAGE_REQUEST && g.outcome !== 'pending') this.pageGroupEnded(job, g);
  }

  /** The page request group ended: the access resumes in an event of its own. */
  private pageGroupEnded(job: Job, g: PageGroup): void {
    job.group = g;
    this.wait(job, 0, Phase.PAGE_RESPONSE);
  }

  private pageResponse(job: Job): void {
    const g = job.group!;
    job.group = undefined;
    if (g.outcome === 'success') {
      job.phase = Phase.RUNNING;
      return;
    }
    const a = job.access!;
    const [reason, name] = outcomeFault(g.outcome);
    failAccess(a, reason, name, a.missAddr);
    this.accessFaulted(job, a);
  }

  // --- the descriptor's life -------------------------------------------------------

  /** setupNs after dispatch: a portal descriptor is decoded; a ring slot is read, in the WQ's address space if the PASID capability allows it. */
  private dispatched(job: Job): void {
    if (job.fromPortal) return this.decode(job);
    const a = job.access!;
    if (a.pasid >= 0 && !this.h.pasid.pasidAllowed(a.pasid, a.priv)) {
      failAccess(a, FAULT_REASON.PASID_INVALID, 'PASID_INVALID', a.addr);
      return this.accessFaulted(job, a);
    }
    job.phase = Phase.RUNNING;
  }

  /** The descriptor's words are known: check them and plan the data accesses. */
  private decode(job: Job): void {
    const wq = job.wq;
    const r = decodeDescriptor(job.words!, wq.policy, this.h.pasid, this.h.maxTransfer, job.decoded);
    const d = r.d;
    job.d = d;
    job.stage = Stage.DATA;
    this.started.value++;
    const tr = this.h.tracer;
    if (tr.wants('dma-engine.desc.start')) {
      tr.trace('dma-engine.desc.start', this.h.name, {
        dev: this.h.name, wq: wq.index, op: opcodeName(d.op), pasid: d.pasid, len: d.length,
      });
    }
    if (r.status !== DESC_STATUS.SUCCESS) {
      job.outcome.refused(r);
      return this.settle(job);
    }
    const len = d.length;
    if (d.op === OPCODE.MEMMOVE) {
      const buf = wq.buffer(len);
      this.plan(job, d.src, false, buf, 0);
      this.plan(job, d.dst, true, buf, 0);
    } else if (d.op === OPCODE.FILL) {
      const buf = wq.buffer(len);
      for (let i = 0; i < len; i++) buf[i] = ((i & 7) < 4 ? d.patternLo >>> (8 * (i & 3)) : d.patternHi >>> (8 * (i & 3))) & 0xff;
      this.plan(job, d.dst, true, buf, 0);
    } else if (d.op === OPCODE.COMPARE) {
      const buf = wq.buffer(2 * len);
      this.plan(job, d.src, false, buf, 0);
      this.plan(job, d.dst, false, buf, len);
    }
    if (job.stepCount === 0) return this.dataDone(job);
    job.step = 0;
    job.access = job.pool[0];
    job.phase = Phase.RUNNING;
  }

  /** Plan one data access of the descriptor (a method, not a closure per descriptor). */
  private plan(job: Job, addr: number, write: boolean, buf: Uint8Array, off: number): void {
    const d = job.d!;
    const a = job.planAccess(addr, d.length, write, buf, off);
    a.pasid = d.pasid;
    a.priv = d.priv;
  }

  /** Every data access is done: the result. */
  private dataDone(job: Job): void {
    const d = job.d!;
    job.outcome.bytes = d.op === OPCODE.NOOP ? 0 : d.length;
    if (d.op === OPCODE.COMPARE) {
      const buf = job.pool[0]!.buf;
      for (let i = 0; i < d.length; i++) {
        if (buf[i] !== buf[d.length + i]) {
          job.outcome.mismatch(i);
          break;
        }
      }
    }
    this.settle(job);
  }

  /** The data stage is over: what it cost passes before the record. */
  private settle(job: Job): void {
    this.wait(job, job.cost, Phase.SETTLING);
    job.cost = 0;
  }

  /** Write the completion record, or report in the error register. */
  private settled(job: Job): void {
    const d = job.d!;
    const o = job.outcome;
    if (!d.rcr || o.errorRegister) {
      if (!o.ok) this.h.raiseError({ code: o.status, wq: job.wq.index, opcode: d.op, info: o.info, addr: o.faultAddr, write: o.faultWrite });
      return this.complete(job);
    }
    // The context object is built only for an armed point (a hit is counted either way).
    const point = this.h.recordPoint;
    if (point.check(point.armed ? { dev: this.h.name, wq: job.wq.index, addr: d.completion } : undefined)?.kind === 'fail') {
      this.h.raiseError({ code: DMAE_ERROR.COMPLETION_WRITE_FAULT, wq: job.wq.index, opcode: d.op, addr: d.completion, write: true });
      return this.complete(job);
    }
    const fa = o.faultAddr;
    // Encoded into the job's own record buffer (the record's words are little-endian, as the host is).
    const words = job.recordWords;
    // Eight words: a loop of stores costs less than the fill builtin's call.
    for (let i = 0; i < words.length; i++) words[i] = 0;
    setBits(words, CR.STATUS, o.status);
    setBits(words, CR.FAULT_WRITE, o.faultWrite ? 1 : 0);
    setBits(words, CR.RESULT, o.result);
    setBits(words, CR.FAULT_REASON, o.reason);
    setBits(words, CR.BYTES, o.bytes);
    // ToUint32 of an integer address below 2^53 is its low word, exactly (a % of doubles is a runtime call).
    setBits(words, CR.FAULT_ADDR_LO, fa >>> 0);
    setBits(words, CR.FAULT_ADDR_HI, Math.floor(fa / 0x1_0000_0000));
    setBits(words, CR.INFO, o.info);
    const a = job.record;
    resetAccess(a, d.completion, COMPLETION_BYTES, true, a.buf);
    a.pasid = d.pasid;
    a.priv = d.priv;
    job.stage = Stage.RECORD;
    job.access = a;
    job.phase = Phase.RUNNING;
  }

  /** The descriptor completed: count, trace, interrupt, and start the WQ's next one. */
  private complete(job: Job): void {
    job.phase = Phase.DONE;
    const wq = job.wq;
    const d = job.d!;
    const o = job.outcome;
    wq.busy = false;
    wq.completed(job.fromPortal, job.epoch);
    (o.ok ? this.succeeded : this.failed).value++;
    const tr = this.h.tracer;
    if (tr.wants('dma-engine.desc.complete')) {
      tr.trace('dma-engine.desc.complete', this.h.name, {
        dev: this.h.name, wq: wq.index, op: opcodeName(d.op), status: statusName(o.status), bytes: o.bytes, fault: o.fault,
      }, this.h.timers.now - job.started);
    }
    if (d.rci) this.h.interrupt(wq);
    // Done with: the next descriptor of the WQ may reuse it.
    wq.spare = job;
    this.kick(wq);
  }
}
