/**
 * Remapping-hardware event interrupts (VT-d spec §5.1.6, §7.4): the fault
 * event (FECTL/FEDATA/FEADDR/FEUADDR), the invalidation completion event
 * (IECTL/IEDATA/IEADDR/IEUADDR) and the page request event (PECTL/...).
 * Each is an MSI the unit writes itself: FEDATA to FEUADDR:FEADDR.
 *
 * An interrupt condition is raised by the unit's status logic. With IM
 * clear the message is sent at once; with IM set IP is set and the message
 * is held. Clearing IM while IP is set sends it; software servicing the
 * status (clearing the status bits) clears IP without a message.
 */
import type { FieldRef, RegRef, RegisterFile } from '../../src/hw/register-file.ts';
import { CTL_IM, CTL_IP, type VtdRegMap } from './regs.ts';

/** The four registers of one event interrupt (control, data, address, upper address). */
export interface EventRegs {
  ctl: 'FECTL' | 'IECTL' | 'PECTL';
  data: 'FEDATA' | 'IEDATA' | 'PEDATA';
  addr: 'FEADDR' | 'IEADDR' | 'PEADDR';
  uaddr: 'FEUADDR' | 'IEUADDR' | 'PEUADDR';
}

export type EventKind = 'fault' | 'inv' | 'prq';

export type MsiSender = (kind: EventKind, addr: number, data: number) => void;

export class EventInterrupt {
  /** The registers' words and fields, resolved once (the page request event fires per page request). */
  private readonly ctl: RegRef;
  private readonly mua: FieldRef;
  private readonly ma: FieldRef;
  private readonly imd: FieldRef;

  constructor(
    rf: RegisterFile<VtdRegMap>,
    readonly kind: EventKind,
    regs: EventRegs,
    private readonly send: MsiSender,
  ) {
    this.ctl = rf.ref(regs.ctl);
    this.mua = rf.fieldRef(regs.uaddr, 'MUA');
    this.ma = rf.fieldRef(regs.addr, 'MA');
    this.imd = rf.fieldRef(regs.data, 'IMD');
  }

  get masked(): boolean {
    return (this.ctl.get() & CTL_IM) !== 0;
  }

  get pending(): boolean {
    return (this.ctl.get() & CTL_IP) !== 0;
  }

  /** A new interrupt condition. */
  raise(): void {
    if (this.masked) {
      this.setIp(true);
      return;
    }
    this.fire();
  }

  /** Software wrote the control register: unmasking a pending interrupt sends it. */
  controlWritten(): void {
    if (!this.masked && this.pending) {
      this.setIp(false);
      this.fire();
    }
  }

  /** Software serviced every status bit behind this event: nothing is pending any more. */
  serviced(): void {
    if (this.pending) this.setIp(false);
  }

  private fire(): void {
    const addr = this.mua.get() * 0x1_0000_0000 + this.ma.get() * 4;
    this.send(this.kind, addr, this.imd.get());
  }

  private setIp(on: boolean): void {
    const v = this.ctl.get();
    this.ctl.set(on ? (v | CTL_IP) >>> 0 : (v & ~CTL_IP) >>> 0);
  }
}
