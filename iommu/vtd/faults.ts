/**
 * Primary fault logging (VT-d spec §7.2.1) into the fault recording
 * registers (§10.4.14), the Fault Status register (§10.4.9) and the
 * fault event interrupt (§7.4). The unit keeps an internal index of the
 * next recording register; a fault is recorded there when FSTS.PFO is clear
 * and that register's F is clear, otherwise PFO is set and the fault is
 * lost. The first fault recorded while PPF is clear sets PPF and FRI. A
 * fault event is raised when a status bit (PPF, IQE, ICE, ITE) is set while
 * none was set before.
 */
import { VTD_INJECTION_POINTS } from './points.ts';
import { encodeLayout } from '../../src/hw/layout.ts';
import type { RegisterFile } from '../../src/hw/register-file.ts';
import type { InjectionPoint } from '../../src/fault/injector.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { AddressType } from '../../src/pci/transaction.ts';
import { FSTS_ICE, FSTS_IQE, FSTS_ITE, FSTS_PFO, FSTS_PPF, type VtdRegMap } from './regs.ts';
import type { EventInterrupt } from './interrupts.ts';
import { faultName } from './fault-reasons.ts';

/** What the unit knows about a faulting request (reused; the translator fills it). */
export class FaultInfo {
  code = 0;
  sid = 0;
  /** PASID of the request, -1 when it had none. */
  pasid = -1;
  addr = 0;
  write = false;
  priv = false;
  exec = false;
  at: AddressType = 'untranslated';
  /** A page request (FRCD T1:T2 = 01), not a DMA. */
  pageReq = false;
}

const STATUS = (FSTS_PPF | FSTS_IQE | FSTS_ICE | FSTS_ITE) >>> 0;
const AT_CODE: Readonly<Record<AddressType, number>> = { untranslated: 0, 'translation-request': 1, translated: 2 };

export class FaultRecorder {
  /** Internal index of the next fault recording register. */
  private index = 0;
  private readonly cRecorded: Counter;
  private readonly cOverflow: Counter;
  private readonly cLost: Counter;
  private readonly point: InjectionPoint;

  constructor(
    private readonly rf: RegisterFile<VtdRegMap>,
    private readonly nfr: number,
    private readonly irq: EventInterrupt,
    private readonly ctx: SimContext,
    private readonly name: string,
  ) {
    this.cRecorded = ctx.counters.counter(`${name}.faults.recorded`);
    this.cOverflow = ctx.counters.counter(`${name}.faults.overflow`);
    this.cLost = ctx.counters.counter(`${name}.faults.lost`);
    this.point = ctx.faults.define(VTD_INJECTION_POINTS)['vtd.fault_record'];
  }

  /** Record a non-recoverable fault; false when it was not recorded (overflow or injected loss). */
  record(f: FaultInfo): boolean {
    const inj = this.point.check(this.point.armed ? { sid: f.sid, code: f.code, addr: f.addr } : undefined);
    if (inj !== undefined && (inj.kind === 'fail' || inj.kind === 'drop')) {
      this.cLost.value++;
      return false;
    }
    const fsts = this.rf.get('FSTS');
    if ((fsts & FSTS_PFO) !== 0) {
      this.overflow(f);
      return false;
    }
    const i = this.index;
    const hiName = `FRCD${i}_HI` as const;
    if (this.rf.getField(hiName, 'F') !== 0) {
      this.rf.set('FSTS', (fsts | FSTS_PFO) >>> 0);
      this.overflow(f);
      return false;
    }
    const page = f.addr - (f.addr % 4096);
    this.rf.setField(`FRCD${i}_LO`, 'FI', page / 4096);
    const pp = f.pasid >= 0;
    const hi = encodeLayout(this.rf.layout(hiName), {
      SID: f.sid & 0xffff, PRIV: f.priv ? 1 : 0, EXE: f.exec ? 1 : 0, PP: pp ? 1 : 0, FR: f.code & 0xff,
      PV: pp ? f.pasid & 0xfffff : 0, AT: AT_CODE[f.at], F: 1,
      // T1:T2 (bits 126, 92): 00 write, 10 read, 01 page request.
      T1: !f.pageReq && !f.write ? 1 : 0, T2: f.pageReq ? 1 : 0,
    });
    this.rf.set(hiName, hi[0]!, hi[1]!);
    this.index = (i + 1) % this.nfr;
    this.cRecorded.value++;
    if ((fsts & FSTS_PPF) === 0) {
      this.rf.set('FSTS', (fsts | FSTS_PPF) >>> 0);
      this.rf.setField('FSTS', 'FRI', i);
      if ((fsts & STATUS) === 0) this.irq.raise();
    }
    if (this.ctx.tracer.wants('vtd.fault.record')) {
      this.ctx.tracer.trace('vtd.fault.record', this.name, { index: i, reason: f.code, name: faultName(f.code), sid: f.sid, pasid: f.pasid, addr: page, write: f.write });
    }
    return true;
  }

  /** Set IQE, ICE or ITE; a fault event when no status bit was set before. */
  setStatus(bit: number): void {
    const fsts = this.rf.get('FSTS');
    if ((fsts & bit) !== 0) return;
    this.rf.set('FSTS', (fsts | bit) >>> 0);
    if ((fsts & STATUS) === 0) this.irq.raise();
  }

  /** Software cleared F in a recording register: PPF is the OR of all F bits. */
  frcdWritten(): void {
    let any = false;
    for (let i = 0; i < this.nfr && !any; i++) any = this.rf.getField(`FRCD${i}_HI`, 'F') !== 0;
    const fsts = this.rf.get('FSTS');
    if (!any && (fsts & FSTS_PPF) !== 0) this.rf.set('FSTS', (fsts & ~FSTS_PPF) >>> 0);
    this.fstsWritten();
  }

  /** After software cleared status bits: nothing left pending clears FECTL.IP. */
  fstsWritten(): void {
    if ((this.rf.get('FSTS') & STATUS) === 0) this.irq.serviced();
  }

  /** §7.2.1: the index returns to 0 when DMA and interrupt remapping are both disabled. */
  resetIndex(): void {
    this.index = 0;
  }

  private overflow(f: FaultInfo): void {
    this.cOverflow.value++;
    if (this.ctx.tracer.wants('vtd.fault.overflow')) {
      this.ctx.tracer.trace('vtd.fault.overflow', this.name, { reason: f.code, name: faultName(f.code), sid: f.sid, addr: f.addr });
    }
  }
}
