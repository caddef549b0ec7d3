/**
 * The driver side of queued invalidation (Linux intel/dmar.c
 * qi_submit_sync / qi_check_fault): descriptors are written at the driver's
 * tail, each batch is closed by an invalidation wait descriptor whose status
 * write carries a fresh sequence number, IQT is moved, and the driver waits
 * (bounded, advancing virtual time with scheduler.runUntil) for the status
 * dword to change.
 *
 * Errors, as Linux handles them:
 * - IQE: the descriptor at IQH was refused; it is replaced by a no-op wait
 *   and IQE cleared, so the rest of the batch runs; the batch returns -EINVAL.
 * - ITE: a device did not answer a device-TLB invalidation; the unit aborted
 *   the wait. ITE is cleared and the whole batch is submitted again once;
 *   a second time-out returns -ETIMEDOUT.
 * - ICE: an unexpected invalidation completion; cleared and reported.
 */
import { ETIMEDOUT, EINVAL, EBUSY } from '../../../src/uapi/errno.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import type { Scheduler } from '../../../src/sim/scheduler.ts';
import { fieldGet, fieldPrep } from '../../../src/hw/layout.ts';
import { FSTS_ICE, FSTS_IQE, FSTS_ITE, VTD_REGS } from '../regs.ts';
import { pageGroupResponseDesc, qd, waitDesc } from './descs.ts';
import type { VtdMmio } from './mmio.ts';

const DESC_BYTES = 32;
/** IQH.QH / IQT.QT count 128-bit descriptor units (bits 18:4 of a byte offset). */
const QI_INDEX_BYTES = 16;
/** Resolved once: the queue index fields are read and written per batch (a page group response is one). */
const IQT_QT = VTD_REGS.field('IQT', 'QT');
const IQH_QH = VTD_REGS.field('IQH', 'QH');
/** Queue of 2^QS_ORDER pages. */
export const QS_ORDER = 0;
const ENTRIES = (4096 << QS_ORDER) / DESC_BYTES;
/** Descriptors per batch (plus its wait), well below the ring size. */
const BATCH = 64;
/** How long (virtual ns) the driver waits for a batch before giving up; the unit's device-TLB time-out is shorter. */
const WAIT_NS = 100_000_000;

export interface QiError {
  kind: 'IQE' | 'ITE' | 'ICE';
  /** IQERCD.IQEI for IQE; the source-id for ITE/ICE. */
  code: number;
  /** The refused descriptor's first dword (IQE). */
  desc0: number;
}

export class InvalidationQueue {
  private tail = 0;
  private seq = 0;
  private lastWasIte = false;
  /** The batch's closing wait descriptor (copied into the ring at once). */
  private readonly waitWords = new Uint32Array(8);
  /** IQH as a byte offset, read once per batch (the unit moves it only after IQT is written). */
  private head = 0;
  /** submit() calls under way (one may run others while it waits, from scheduler events). */
  private depth = 0;
  /** A page group response's descriptor and the one-entry list holding it, for a submit that is not nested in another. */
  private readonly respWords = new Uint32Array(8);
  private readonly respList: readonly Uint32Array[] = [this.respWords];
  /** A descriptor's bytes, copied into the ring in one write (qi_submit_sync's memcpy). */
  private readonly descBytes = new Uint8Array(DESC_BYTES);
  private readonly descView = new DataView(this.descBytes.buffer);
  submitted = 0;
  timeouts = 0;

  constructor(
    private readonly regs: VtdMmio,
    private readonly mem: PhysMem,
    /** The ring (4 KiB << QS_ORDER, zeroed). */
    readonly base: number,
    /** A dword the wait descriptors write their sequence numbers to. */
    private readonly statusAddr: number,
    private readonly scheduler: Scheduler,
    private readonly onError: (e: QiError) => void,
  ) {}

  /** Program IQT/IQA (before GCMD.QIE): this ring, 256-bit descriptors (DW, scalable mode), 2^QS pages. */
  program(): void {
    this.tail = 0;
    this.regs.w64('IQT', 0);
    this.regs.write('IQA', { IQA: this.base / 4096, DW: 1, QS: QS_ORDER });
  }

  /**
   * Run descriptors and wait until the unit has completed them: 0 or -errno.
   * `drain`: the closing wait also drains page requests (PD, Linux QI_OPT_WAIT_DRAIN).
   */
  submit(descs: readonly Uint32Array[], drain = false): number {
    this.depth++;
    try {
      return this.submitBatches(descs, drain);
    } finally {
      this.depth--;
    }
  }

  /**
   * A Page Group Response (qd.pageGroupResponse) on its own, as the driver
   * answers each fault group. Outside another submit its descriptor is a
   * scratch: the batch is re-read only by this call (an ITE retry), and a
   * call nested in it, from an event run while it waits, gets its own.
   */
  submitPageGroupResponse(rid: number, pasid: number, prgi: number, lpig: boolean, rc: number): number {
    if (this.depth > 0) return this.submit([pageGroupResponseDesc(rid, pasid, prgi, lpig, rc)]);
    pageGroupResponseDesc(rid, pasid, prgi, lpig, rc, this.respWords);
    return this.submit(this.respList);
  }

  private submitBatches(descs: readonly Uint32Array[], drain: boolean): number {
    let err = 0;
    let i = 0;
    do {
      // The whole list when it is one batch (a page group response): no copy.
      const batch = i === 0 && descs.length <= BATCH ? descs : descs.slice(i, i + BATCH);
      let r = this.submitOnce(batch, drain);
      // Linux retries a batch whose wait an ITE aborted (-EAGAIN); once here.
      if (r === -ETIMEDOUT && this.lastWasIte) r = this.submitOnce(batch, drain);
      if (r < 0 && err === 0) err = r;
      i += BATCH;
    } while (i < descs.length);
    return err;
  }

  private submitOnce(descs: readonly Uint32Array[], drain: boolean): number {
    this.lastWasIte = false;
    const seq = (this.seq = (this.seq + 1) >>> 0 || 1);
    this.head = this.headOffset();
    for (const d of descs) if (!this.put(d)) return -EBUSY;
    if (!this.put(waitDesc(seq, this.statusAddr, drain, this.waitWords))) return -EBUSY;
    this.regs.w64('IQT', fieldPrep(IQT_QT, (this.tail * DESC_BYTES) / QI_INDEX_BYTES));
    this.submitted += descs.length;
    // isDone(seq), not a named closure: this runs for every page group response.
    const deadline = this.scheduler.now + WAIT_NS;
    let err = 0;
    for (let guard = 0; guard < ENTRIES + 4; guard++) {
      if (this.isDone(seq)) return err;
      const fsts = this.regs.r32('FSTS');
      if ((fsts & FSTS_ICE) !== 0) this.clearIce();
      if ((fsts & FSTS_IQE) !== 0) {
        this.fixIqe();
        err = -EINVAL;
        continue;
      }
      if ((fsts & FSTS_ITE) !== 0) {
        const sid = this.regs.field('IQERCD', 'ITESID');
        this.onError({ kind: 'ITE', code: sid, desc0: 0 });
        this.regs.w32('FSTS', FSTS_ITE);
        this.lastWasIte = true;
        this.timeouts++;
        return -ETIMEDOUT;
      }
      const progressed = this.scheduler.runUntil(
        () => this.isDone(seq) || (this.regs.r32('FSTS') & (FSTS_IQE | FSTS_ITE)) !== 0 || this.scheduler.now >= deadline,
      );
      if (!progressed || (!this.isDone(seq) && this.scheduler.now >= deadline)) break;
    }
    if (this.isDone(seq)) return err;
    this.timeouts++;
    return -ETIMEDOUT;
  }

  /** Has the wait descriptor carrying `seq` written its status? */
  private isDone(seq: number): boolean {
    return this.mem.read32(this.statusAddr) === seq;
  }

  private put(d: Uint32Array): boolean {
    const next = (this.tail + 1) % ENTRIES;
    if (next * DESC_BYTES === this.head) return false;
    const at = this.base + this.tail * DESC_BYTES;
    const v = this.descView;
    for (let i = 0; i < 8; i++) v.setUint32(4 * i, d[i] ?? 0, true);
    this.mem.writeFrom(at, this.descBytes);
    this.tail = next;
    return true;
  }

  /** The unit stopped at the descriptor at IQH: report it, replace it with a no-op wait, clear IQE. */
  private fixIqe(): void {
    const head = this.headOffset();
    const iqei = this.regs.field('IQERCD', 'IQEI');
    const at = this.base + head;
    this.onError({ kind: 'IQE', code: iqei, desc0: this.mem.read32(at) });
    const nop = qd.nop();
    for (let i = 0; i < 8; i++) this.mem.write32(at + 4 * i, nop[i]!);
    this.regs.w32('FSTS', FSTS_IQE);
  }

  /** IQH as a byte offset in the ring (QH counts 128-bit units; with DW = 1 it stays 256-bit aligned). */
  private headOffset(): number {
    return fieldGet(IQH_QH, this.regs.r32('IQH')) * QI_INDEX_BYTES;
  }

  private clearIce(): void {
    const sid = this.regs.field('IQERCD', 'ICESID');
    this.onError({ kind: 'ICE', code: sid, desc0: 0 });
    this.regs.w32('FSTS', FSTS_ICE);
  }
}
