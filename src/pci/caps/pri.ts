import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';
import { defineRegisters } from '../../hw/registers.ts';
import { valueBefore } from './bits.ts';

/** Page Request Extended Capability registers (PCIe Base 10.5.2), offsets from the capability. */
export const PRI_REGS = defineRegisters('pri', [
  /** 10.5.2.2 Page Request Control. Reset always reads 0 (the model clears it once the write is seen). */
  { name: 'CTRL', offset: 0x04, size: 2, fields: [['ENABLE', 0], ['RESET', 1]] },
  /** 10.5.2.3 Page Request Status: Response Failure and Unexpected PRG Index are RW1C. */
  {
    name: 'STATUS', offset: 0x06, size: 2,
    fields: [['RF', 0, 0, 'w1c'], ['UPRGI', 1, 1, 'w1c'], ['STOPPED', 8, 8, 'ro'], ['PASID_REQUIRED', 15, 15, 'ro']],
  },
  /** 10.5.2.4 Outstanding Page Request Capacity (RO). */
  { name: 'MAX_REQ', offset: 0x08, size: 4, access: 'ro' },
  /** 10.5.2.5 Outstanding Page Request Allocation (RW). */
  { name: 'ALLOC_REQ', offset: 0x0c, size: 4 },
]);

/** Page Request Extended Capability (PCIe Base 10.5.2): ID, version, register offsets, size. */
export const PRI = { CAP_ID: 0x0013, VERSION: 1, ...PRI_REGS.offsets(), SIZEOF: 16 } as const;

/** Page Request Control / Status field masks (from the table). */
export const PRI_CTRL = PRI_REGS.masks('CTRL');
export const PRI_STATUS = PRI_REGS.masks('STATUS');

export interface PriOptions {
  /** Outstanding Page Request Capacity: page requests the function can have in flight. */
  capacity: number;
  /** PRG Response PASID Required: responses must carry the request's PASID (default false). */
  pasidRequired?: boolean;
  /** Software set or cleared Enable. */
  onEnableChange?: (enabled: boolean, cap: PriCapability) => void;
  /** Software reset the interface (Reset written with Enable clear): drop page request state. */
  onReset?: (cap: PriCapability) => void;
}

export class PriCapability {
  readonly offset: number;
  private readonly cfg: ConfigSpace;
  private readonly opts: PriOptions;
  private outstandingCount = 0;

  constructor(cfg: ConfigSpace, list: CapabilityList, options: PriOptions) {
    const cap = options.capacity;
    if (!Number.isInteger(cap) || cap < 0 || cap > 0xffffffff) throw new RangeError(`bad PRI capacity ${cap}`);
    this.cfg = cfg;
    this.opts = options;
    this.offset = list.addExt(PRI.CAP_ID, PRI.VERSION, PRI.SIZEOF);
    const b = this.offset;
    cfg.set32(b + PRI.MAX_REQ, cap);
    // Reset is writable so the hook sees the 1; the hook clears it at once.
    cfg.setWritable(b + PRI.CTRL, 2, PRI_REGS.writableMask('CTRL'));
    cfg.setW1C(b + PRI.STATUS, 2, PRI_REGS.w1cMask('STATUS'));
    cfg.setWritable(b + PRI.ALLOC_REQ, 4, PRI_REGS.writableMask('ALLOC_REQ'));
    cfg.onWrite(b + PRI.CTRL, 2, (off, _n, old) => this.ctrlWritten(valueBefore(cfg, b + PRI.CTRL, 2, off, old)));
    this.reset();
  }

  /** Reset state: disabled, no allocation, no errors, nothing outstanding (Stopped). */
  reset(): void {
    const b = this.offset;
    this.cfg.set16(b + PRI.CTRL, 0);
    this.cfg.set16(b + PRI.STATUS, this.opts.pasidRequired ? PRI_STATUS.PASID_REQUIRED : 0);
    this.cfg.set32(b + PRI.ALLOC_REQ, 0);
    this.outstandingCount = 0;
    this.updateStopped();
  }

  private get ctrl(): number {
    return this.cfg.get16(this.offset + PRI.CTRL);
  }

  private get status(): number {
    return this.cfg.get16(this.offset + PRI.STATUS);
  }

  get enabled(): boolean {
    return (this.ctrl & PRI_CTRL.ENABLE) !== 0;
  }

  /** Enable is clear and every page request issued has had its response. */
  get stopped(): boolean {
    return (this.status & PRI_STATUS.STOPPED) !== 0;
  }

  get responseFailure(): boolean {
    return (this.status & PRI_STATUS.RF) !== 0;
  }

  get unexpectedPrgIndex(): boolean {
    return (this.status & PRI_STATUS.UPRGI) !== 0;
  }

  get pasidRequired(): boolean {
    return (this.status & PRI_STATUS.PASID_REQUIRED) !== 0;
  }

  get capacity(): number {
    return this.cfg.get32(this.offset + PRI.MAX_REQ);
  }

  /** Page requests software lets the function have outstanding. */
  get allocation(): number {
    return this.cfg.get32(this.offset + PRI.ALLOC_REQ);
  }

  get outstanding(): number {
    return this.outstandingCount;
  }

  /** The device tells how many page requests await a response (0 = drained). */
  setOutstanding(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`bad outstanding page request count ${n}`);
    this.outstandingCount = n;
    this.updateStopped();
  }

  /** A PRG Response said Response Failure: the function expects no more responses. */
  reportResponseFailure(): void {
    this.cfg.setBits16(this.offset + PRI.STATUS, PRI_STATUS.RF, true);
  }

  /** A PRG Response named a group index with no outstanding request. */
  reportUnexpectedPrgIndex(): void {
    this.cfg.setBits16(this.offset + PRI.STATUS, PRI_STATUS.UPRGI, true);
  }

  private ctrlWritten(before: number): void {
    const now = this.ctrl;
    const resetRequested = (now & PRI_CTRL.RESET) !== 0;
    if (resetRequested) this.cfg.setBits16(this.offset + PRI.CTRL, PRI_CTRL.RESET, false);
    const enableChanged = ((before ^ now) & PRI_CTRL.ENABLE) !== 0;
    if (enableChanged) this.opts.onEnableChange?.(this.enabled, this);
    // Reset only acts when Enable is clear, or being cleared by this same write
    // (10.5.2.2). It clears the credit counter and pending request state;
    // Response Failure and UPRGI are RW1C status and stay until software clears them.
    if (resetRequested && !this.enabled) {
      this.outstandingCount = 0;
      this.opts.onReset?.(this);
    }
    this.updateStopped();
  }

  /** Stopped is only meaningful with Enable clear; while enabled it reads 0. */
  private updateStopped(): void {
    const stopped = !this.enabled && this.outstandingCount === 0;
    this.cfg.setBits16(this.offset + PRI.STATUS, PRI_STATUS.STOPPED, stopped);
  }
}
