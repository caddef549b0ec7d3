/**
 * Queued invalidation (VT-d spec §6.5.2): a ring of 2^QS 4 KiB pages at
 * IQA holding 128-bit (DW = 0) or 256-bit (DW = 1) descriptors; software
 * writes descriptors and moves IQT, the unit fetches from IQH. Here a write
 * to IQT processes every descriptor from IQH up to IQT at once (at most one
 * lap of the ring), advancing IQH after each.
 *
 * An error (§6.5.2.10) sets FSTS.IQE (fault event) and IQERCD.IQEI, and the
 * unit stops with IQH at the offending descriptor; nothing more is fetched
 * until software clears IQE. Errors: IQT beyond the queue (IQEI 1), a fetch
 * that fails (2), a descriptor type that is unknown or for a feature the
 * unit lacks (3: device-TLB and page group response until part 2, interrupt
 * entry cache always), reserved bits or a reserved granularity / AM above
 * MAMV (4), 128-bit descriptors in scalable mode (5), IQT not 256-bit
 * aligned with DW = 1 (6).
 */
import { formatLayout } from '../../src/hw/layout.ts';
import type { RegisterFile } from '../../src/hw/register-file.ts';
import type { InjectionPoint } from '../../src/fault/injector.ts';
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { EventInterrupt } from './interrupts.ts';
import type { FaultRecorder } from './faults.ts';
import type { Invalidator } from './invalidate.ts';
import {
  DESC_CC, DESC_DEV_TLB, DESC_IEC, DESC_INV_WAIT, DESC_IOTLB, DESC_LAYOUTS, DESC_PC, DESC_PGRP_RESP, DESC_P_DEV_TLB,
  DESC_P_IOTLB, descAddr, descType, waitStatusAddr,
} from './inv-desc.ts';
import { FSTS_IQE, IQEI, type VtdCaps } from './regs.ts';
import { hasReservedBits } from './root-context.ts';

/** What the queue needs from the unit. */
export interface QueueHost {
  readonly rf: RegisterFile;
  readonly mem: PhysMem;
  readonly caps: VtdCaps;
  readonly ctx: SimContext;
  readonly name: string;
  readonly inv: Invalidator;
  readonly faultRecorder: FaultRecorder;
  readonly invEvent: EventInterrupt;
  qiEnabled(): boolean;
  scalableMode(): boolean;
}

const DESC_NAMES: Readonly<Record<number, string>> = {
  [DESC_CC]: 'context-cache', [DESC_IOTLB]: 'iotlb', [DESC_DEV_TLB]: 'device-tlb', [DESC_IEC]: 'iec',
  [DESC_INV_WAIT]: 'wait', [DESC_P_IOTLB]: 'pasid-iotlb', [DESC_PC]: 'pasid-cache', [DESC_P_DEV_TLB]: 'pasid-device-tlb',
  [DESC_PGRP_RESP]: 'page-group-response',
};

export class InvQueue {
  private readonly w = new Uint32Array(8);
  private readonly point: InjectionPoint;
  private readonly cDesc: Counter;
  private readonly cErr: Counter;
  private readonly cWait: Counter;

  constructor(private readonly h: QueueHost) {
    this.point = h.ctx.faults.point('vtd.inv_queue_process');
    this.cDesc = h.ctx.counters.counter(`${h.name}.qi.descriptors`);
    this.cErr = h.ctx.counters.counter(`${h.name}.qi.errors`);
    this.cWait = h.ctx.counters.counter(`${h.name}.qi.waits`);
  }

  /** Fetch and execute descriptors from IQH to IQT. */
  process(): void {
    const { rf, mem } = this.h;
    if (!this.h.qiEnabled() || (rf.get('FSTS') & FSTS_IQE) !== 0) return;
    const iqa = rf.get('IQA');
    const dw = (iqa & 0x800) !== 0;
    const descBytes = dw ? 32 : 16;
    const qbytes = 4096 * 2 ** (iqa & 7);
    const haw = this.h.caps.haw;
    const base = (rf.getHi('IQA') % 2 ** (haw - 32)) * 0x1_0000_0000 + ((iqa & 0xfffff000) >>> 0);
    const tail = rf.get('IQT') & 0x7fff0;
    let head = rf.get('IQH') & 0x7fff0;
    if (head === tail) return;
    if (dw && (tail & 0x10) !== 0) return this.error(IQEI.TAIL_MISALIGNED, head, 0);
    if (tail >= qbytes) return this.error(IQEI.INVALID_TAIL, head, 0);
    if (!dw && this.h.scalableMode()) return this.error(IQEI.INVALID_WIDTH, head, 0);
    const w = this.w;
    for (let n = 0; head !== tail && n < qbytes / descBytes; n++) {
      w.fill(0);
      let ok = true;
      for (let i = 0; i < descBytes / 4 && ok; i++) {
        const v = mem.read32Checked(base + head + 4 * i);
        if (v < 0) ok = false;
        else w[i] = v;
      }
      const inj = this.point.check(this.point.armed ? { head } : undefined);
      if (!ok || inj?.kind === 'fail') return this.error(IQEI.FETCH_ERROR, head, 0);
      if (inj?.kind === 'corrupt') {
        w[0] = (w[0]! ^ inj.xorLo) >>> 0;
        w[1] = (w[1]! ^ (inj.xorHi ?? 0)) >>> 0;
      }
      if (inj?.kind !== 'drop') {
        const iqei = this.execute(w, head / descBytes);
        if (iqei !== 0) return this.error(iqei, head, descType(w));
      }
      head = (head + descBytes) % qbytes;
      rf.set('IQH', head, 0);
    }
  }

  /** Run one descriptor; 0, or the IQEI of why it is invalid. */
  private execute(w: Uint32Array, index: number): number {
    const { caps, inv } = this.h;
    const type = descType(w);
    const layout = DESC_LAYOUTS[type];
    if (layout === undefined || type === DESC_IEC) return IQEI.INVALID_TYPE;
    if ((type === DESC_DEV_TLB || type === DESC_P_DEV_TLB) && !caps.deviceTlb) return IQEI.INVALID_TYPE;
    if (type === DESC_PGRP_RESP && !caps.pageRequests) return IQEI.INVALID_TYPE;
    if (hasReservedBits(layout, w)) return IQEI.RESERVED_FIELD;
    this.cDesc.value++;
    if (this.h.ctx.tracer.wants('vtd.qi.desc')) {
      this.h.ctx.tracer.trace('vtd.qi.desc', this.h.name, { index, type: DESC_NAMES[type]!, desc: formatLayout(layout, w) });
    }
    const g = (w[0]! >>> 4) & 3;
    const did = w[0]! >>> 16;
    const am = w[2]! & 0x3f;
    switch (type) {
      case DESC_CC:
        if (g === 0) return IQEI.RESERVED_FIELD;
        if (g === 1) inv.contextGlobal();
        else if (g === 2) inv.contextDomain(did);
        else inv.contextDevice(did, w[1]! & 0xffff, (w[1]! >>> 16) & 3);
        return 0;
      case DESC_IOTLB:
        if (g === 0 || (g === 3 && am > caps.mamv)) return IQEI.RESERVED_FIELD;
        if (g === 1) inv.iotlbGlobal();
        else if (g === 2) inv.iotlbDomain(did);
        else inv.iotlbPages(did, descAddr(w), am);
        return 0;
      case DESC_P_IOTLB: {
        if (g < 2 || (g === 3 && am > caps.mamv)) return IQEI.RESERVED_FIELD;
        const pasid = w[1]! & 0xfffff;
        if (g === 2) inv.piotlbPasid(did, pasid);
        else inv.piotlbPages(did, pasid, descAddr(w), am);
        return 0;
      }
      case DESC_PC: {
        const pasid = w[1]! & 0xfffff;
        if (g === 2) return IQEI.RESERVED_FIELD;
        if (g === 0) inv.pasidDomain(did);
        else if (g === 1) inv.pasidSelective(did, pasid);
        else inv.pasidGlobal();
        return 0;
      }
      case DESC_INV_WAIT:
        return this.wait(w);
      default:
        // Device-TLB and page group response descriptors arrive with part 2.
        return IQEI.INVALID_TYPE;
    }
  }

  /** §6.5.2.8: status write, completion interrupt; FN is implicit (everything before is done). */
  private wait(w: Uint32Array): number {
    const { rf, mem, caps } = this.h;
    const flags = w[0]!;
    if ((flags & 0x80) !== 0 && !caps.pageRequests) return IQEI.RESERVED_FIELD; // PD needs ECAP.PDS
    const sw = (flags & 0x20) !== 0;
    const irq = (flags & 0x10) !== 0;
    const addr = waitStatusAddr(w);
    this.cWait.value++;
    if (sw) mem.write32(addr, w[1]!);
    if (irq) {
      const ics = rf.get('ICS');
      if ((ics & 1) === 0) {
        rf.set('ICS', (ics | 1) >>> 0);
        this.h.invEvent.raise();
      }
    }
    if (this.h.ctx.tracer.wants('vtd.qi.wait')) {
      this.h.ctx.tracer.trace('vtd.qi.wait', this.h.name, { statusWrite: sw, addr, data: w[1]!, interrupt: irq, fence: (flags & 0x40) !== 0 });
    }
    return 0;
  }

  private error(iqei: number, head: number, type: number): void {
    const rf = this.h.rf;
    this.cErr.value++;
    rf.set('IQERCD', (rf.get('IQERCD') & ~0xf) | iqei, rf.getHi('IQERCD'));
    this.h.faultRecorder.setStatus(FSTS_IQE);
    if (this.h.ctx.tracer.wants('vtd.qi.error')) this.h.ctx.tracer.trace('vtd.qi.error', this.h.name, { head, iqei, type });
  }
}
