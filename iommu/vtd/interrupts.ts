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
import type { RegisterFile } from '../../src/hw/register-file.ts';
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
  constructor(
    private readonly rf: RegisterFile<VtdRegMap>,
    readonly kind: EventKind,
    private readonly regs: EventRegs,
    private readonly send: MsiSender,
  ) {}

  get masked(): boolean {
    return (this.rf.get(this.regs.ctl) & CTL_IM) !== 0;
  }

  get pending(): boolean {
    return (this.rf.get(this.regs.ctl) & CTL_IP) !== 0;
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
    const r = this.regs;
    const addr = this.rf.getField(r.uaddr, 'MUA') * 0x1_0000_0000 + this.rf.getField(r.addr, 'MA') * 4;
    this.send(this.kind, addr, this.rf.getField(r.data, 'IMD'));
  }

  private setIp(on: boolean): void {
    const v = this.rf.get(this.regs.ctl);
    this.rf.set(this.regs.ctl, on ? (v | CTL_IP) >>> 0 : (v & ~CTL_IP) >>> 0);
  }
}
