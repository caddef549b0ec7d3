import { newDecodeResult, type Decoded, type DecodeResult } from './decode.ts';
import { COMPLETION_BYTES, DESC_BYTES, DESC_STATUS } from './descriptor.ts';
import type { PageGroup } from './page-requests.ts';
import { newAccess, resetAccess, type Access } from './translation.ts';
import type { WorkQueue } from './work-queue.ts';
import { young } from '../../src/lib/young.ts';

/**
 * What a descriptor's job is doing (Job.phase); the diagram is above
 * Executor. RUNNING is the only phase in which the executor moves bytes.
 * Every other phase waits: for one scheduler event, whose handler the phase
 * names, or (PAGE_REQUEST) for the end of a page request group.
 */
export const Phase = {
  /** Dispatched: setupNs before the descriptor (or its ring slot) is read. */
  DISPATCH: 0,
  /** Running the stage's current access synchronously, as far as the ATC allows. */
  RUNNING: 1,
  /** The access missed the ATC: a Translation Request is out (the cost so far plus atsLatencyNs). */
  TRANSLATING: 2,
  /** Its Translation Completion was lost: waiting out the completion timeout (atsTimeoutNs). */
  TRANSLATION_LOST: 3,
  /** The translation gave no permission: a page request group is out, until its response or timeout. */
  PAGE_REQUEST: 4,
  /** The group ended (Job.group): the access resumes or fails in an event of its own, 0 ns later. */
  PAGE_RESPONSE: 5,
  /** The data accesses are over (done, failed, or never started): their cost, then the completion record. */
  SETTLING: 6,
  /** The completion record is written: the fabric latency of that write, then completion. */
  RECORD_LATENCY: 7,
  /** Completed; or dropped, for a ring slot that could not be read. */
  DONE: 8,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** Which accesses the job runs (Job.stage): a fault ends each stage its own way. */
export const Stage = {
  /** The ring slot at HEAD. A fault halts the WQ; no descriptor, no record. */
  FETCH: 0,
  /** The descriptor's data accesses, in order. A fault ends them: PAGE_FAULT in the record. */
  DATA: 1,
  /** The completion record. A fault goes to the error register. */
  RECORD: 2,
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

/** What the completion record (or the error register) will say about the descriptor. */
export class Outcome {
  status: number = DESC_STATUS.SUCCESS;
  /** The error cannot go in a completion record (its address or address space is what is wrong). */
  errorRegister = false;
  info = 0;
  /** FAULT_REASON, the fault's name, address and direction of a faulting access. */
  reason = 0;
  fault = '';
  faultAddr = 0;
  faultWrite = false;
  /** Bytes written (MEMMOVE, FILL) or offset of the first difference (COMPARE). */
  bytes = 0;
  /** COMPARE: 1 when the buffers differ. */
  result = 0;

  /** Back to a fresh outcome (a job is reused for the WQ's next descriptor). */
  clear(): void {
    this.status = DESC_STATUS.SUCCESS;
    this.errorRegister = false;
    this.info = 0;
    this.reason = 0;
    this.fault = '';
    this.faultAddr = 0;
    this.faultWrite = false;
    this.bytes = 0;
    this.result = 0;
  }

  /** SUCCESS and COMPARE_MISMATCH are results; the other statuses are errors. */
  get ok(): boolean {
    return this.status === DESC_STATUS.SUCCESS || this.status === DESC_STATUS.COMPARE_MISMATCH;
  }

  /** The descriptor failed its checks (decodeDescriptor). */
  refused(r: DecodeResult): void {
    this.status = r.status;
    this.info = r.info;
    this.errorRegister = r.errorRegister;
    if (r.status === DESC_STATUS.CR_ADDR_INVALID) this.faultAddr = r.d.completion;
  }

  /** A data access faulted: BYTES counts what a write moved before it. */
  pageFault(a: Access): void {
    this.status = DESC_STATUS.PAGE_FAULT;
    this.reason = a.reason;
    this.fault = a.fault;
    this.faultAddr = a.faultAddr;
    this.faultWrite = a.write;
    this.info = a.reason;
    this.bytes = a.write ? a.done : 0;
  }

  /** COMPARE found its first difference at `offset`. */
  mismatch(offset: number): void {
    this.status = DESC_STATUS.COMPARE_MISMATCH;
    this.result = 1;
    this.bytes = offset;
  }
}

/**
 * One descriptor on its way through a WQ's engine: where it is (phase,
 * stage, the access in progress), what it is (the words and their decoded
 * fields), what it will report (outcome) and the virtual time it owes.
 *
 * A WQ runs one descriptor at a time, so a job that completed is reused for
 * the WQ's next one (WorkQueue.spare; begin() resets it): with its accesses,
 * the ring slot's buffer, the decoded fields and the completion record's
 * buffer, a descriptor on a warm ATC allocates nothing but its scheduler
 * events.
 */
export class Job {
  phase: Phase = Phase.DISPATCH;
  stage: Stage = Stage.FETCH;
  /** The access running, or stopped waiting for a translation: the ring slot, a data step or the record. */
  access: Access | undefined;
  /** The data accesses planned from the descriptor are pool[0..stepCount), run in order; `step` is the current one. */
  stepCount = 0;
  step = 0;
  /** The descriptor as submitted (a portal's assembly, or the ring slot once read) and as decoded. */
  words: Uint32Array | undefined;
  d: Decoded | undefined;
  readonly outcome = new Outcome();
  /**
   * Virtual ns owed by the fetch and the data accesses (bytes at the
   * modelled bandwidth, and what the IOMMU charged for misses), paid with
   * the job's next wait.
   */
  cost = 0;
  /** What the fabric charged the completion record's write, waited before completion. */
  recordLatency = 0;
  /** PAGE_RESPONSE: the page request group that ended. */
  group: PageGroup | undefined;
  fromPortal = false;
  epoch = 0;
  started = 0;
  /** The scheduler callback of every wait of this job (one closure per job, not one per wait). */
  readonly onTimer: () => void;
  /** The page request groups' callback, made at the job's first page request. */
  onPageGroup: ((g: PageGroup) => void) | undefined;
  /** Reused storage: data accesses (the steps are its first stepCount), the ring slot's access and words, the decoded fields, the record. */
  readonly pool: Access[] = [];
  /** The ring slot's words; the fetch reads its bytes straight into them (little-endian words on a little-endian host, as the record's). */
  readonly slotWords = new Uint32Array(DESC_BYTES / 4);
  readonly fetch: Access = newAccess(0, DESC_BYTES, false, new Uint8Array(this.slotWords.buffer));
  readonly decoded: DecodeResult = newDecodeResult();
  readonly recordWords = new Uint32Array(COMPLETION_BYTES / 4);
  readonly record: Access = newAccess(0, COMPLETION_BYTES, true, new Uint8Array(this.recordWords.buffer));

  constructor(
    readonly wq: WorkQueue,
    timerFired: (job: Job) => void,
  ) {
    this.onTimer = young(() => timerFired(this));
  }

  /** Start a descriptor (a fresh job, or the WQ's last one again once it is DONE). */
  begin(fromPortal: boolean, epoch: number, now: number): void {
    this.phase = Phase.DISPATCH;
    this.stage = fromPortal ? Stage.DATA : Stage.FETCH;
    this.access = undefined;
    this.stepCount = 0;
    this.step = 0;
    this.words = undefined;
    this.d = undefined;
    this.outcome.clear();
    this.cost = 0;
    this.recordLatency = 0;
    this.group = undefined;
    this.fromPortal = fromPortal;
    this.epoch = epoch;
    this.started = now;
  }

  /** Plan data access number `stepCount`: one of the pool's, reset. */
  planAccess(addr: number, len: number, write: boolean, buf: Uint8Array, bufOff: number): Access {
    const k = this.stepCount++;
    let a = this.pool[k];
    if (a === undefined) this.pool.push((a = newAccess(addr, len, write, buf, bufOff)));
    else resetAccess(a, addr, len, write, buf, bufOff);
    return a;
  }
}
