/**
 * Queued invalidation (VT-d spec §6.5.2): a ring of 2^QS 4 KiB pages at
 * IQA holding 128-bit (DW = 0) or 256-bit (DW = 1) descriptors; software
 * writes descriptors and moves IQT, the unit fetches from IQH. Here a write
 * to IQT processes every descriptor from IQH up to IQT at once (at most one
 * lap of the ring), advancing IQH after each.
 *
 * Device-TLB descriptors send ATS invalidation requests (devtlb.ts). An
 * invalidation wait descriptor fetched while any of them is still
 * outstanding is held: IQH moves past it, fetching stops, and its status
 * write / interrupt happen when the last completion arrives; then fetching
 * resumes. (Waits are treated as fenced while device-TLB work is pending: FN
 * = 0 only allows later descriptors to run early, it does not require it.)
 * When a device-TLB invalidation times out (FSTS.ITE, IQERCD.ITESID) the held
 * wait is aborted (no status write) and nothing more is fetched until
 * software clears ITE; fetching then resumes at IQH.
 *
 * Page group response descriptors send a PRG Response downstream. PD in a
 * wait (page request drain, ECAP.PDS) needs nothing more: page requests are
 * written to the page request queue the moment they arrive.
 *
 * An error (§6.5.2.10) sets FSTS.IQE (fault event) and IQERCD.IQEI, and the
 * unit stops with IQH at the offending descriptor; nothing more is fetched
 * until software clears IQE. Errors: IQT beyond the queue (IQEI 1), a fetch
 * that fails (2), a descriptor type that is unknown or for a feature the
 * unit lacks (3: device-TLB without ECAP.DT, page group response without
 * ECAP.PRS, interrupt entry cache always), reserved bits, a reserved
 * granularity / response code or AM above MAMV (4), 128-bit descriptors in
 * scalable mode (5), IQT not 256-bit aligned with DW = 1 (6).
 */
import { VTD_INJECTION_POINTS } from './points.ts';
import { formatLayout, hasReservedBits, readField as rd } from '../../src/hw/layout.ts';
import type { FieldRef, RegRef, RegisterFile } from '../../src/hw/register-file.ts';
import { NO_ACTIONS, type InjectionPoint } from '../../src/fault/injector.ts';
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import type { PrgResponseCode } from '../../src/pci/ats-messages.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { DevTlbInvalidator } from './devtlb.ts';
import type { EventInterrupt } from './interrupts.ts';
import type { FaultRecorder } from './faults.ts';
import type { Invalidator } from './invalidate.ts';
import {
  CC_INV_DESC, DESC_CC, DESC_DEV_TLB, DESC_IEC, DESC_INV_WAIT, DESC_IOTLB, DESC_LAYOUT_OF, DESC_PC, DESC_PGRP_RESP, DESC_P_DEV_TLB,
  DESC_P_IOTLB, DEV_TLB_INV_DESC, INV_WAIT_DESC, IOTLB_INV_DESC, PC_INV_DESC, PGRP_RC_FAILURE, PGRP_RC_INVALID, PGRP_RC_SUCCESS,
  PGRP_RESP_DESC, P_DEV_TLB_INV_DESC, P_IOTLB_INV_DESC, descType, devTlbRange, waitStatusAddr,
} from './inv-desc.ts';
import { FSTS_ICE, FSTS_IQE, FSTS_ITE, IQEI, type VtdCaps, type VtdRegMap } from './regs.ts';

/** Context-cache and IOTLB invalidation granularities (the G field): 01 global, 10 domain, 11 device/page-selective. */
const G_GLOBAL = 1;
const G_DOMAIN = 2;
const G_PAGE = 3;

/** What the queue needs from the unit. */
export interface QueueHost {
  readonly rf: RegisterFile<VtdRegMap>;
  readonly mem: PhysMem;
  readonly caps: VtdCaps;
  readonly ctx: SimContext;
  readonly name: string;
  readonly inv: Invalidator;
  readonly faultRecorder: FaultRecorder;
  readonly invEvent: EventInterrupt;
  readonly devtlb: DevTlbInvalidator;
  qiEnabled(): boolean;
  scalableMode(): boolean;
  /** Send a PRG Response downstream (a page group response descriptor). */
  prgResponse(rid: number, pasid: number, prgIndex: number, code: PrgResponseCode): void;
}

const DESC_NAMES: Readonly<Record<number, string>> = {
  [DESC_CC]: 'context-cache', [DESC_IOTLB]: 'iotlb', [DESC_DEV_TLB]: 'device-tlb', [DESC_IEC]: 'iec',
  [DESC_INV_WAIT]: 'wait', [DESC_P_IOTLB]: 'pasid-iotlb', [DESC_PC]: 'pasid-cache', [DESC_P_DEV_TLB]: 'pasid-device-tlb',
  [DESC_PGRP_RESP]: 'page-group-response',
};

/** execute(): the wait must be held for device-TLB completions. */
const HELD = -1;

interface HeldWait {
  sw: boolean;
  irq: boolean;
  addr: number;
  data: number;
  fence: boolean;
}

export class InvQueue {
  private readonly w = new Uint32Array(8);
  private readonly point: InjectionPoint;
  private readonly cDesc: Counter;
  private readonly cErr: Counter;
  private readonly cWait: Counter;
  private readonly cAborted: Counter;
  private held: HeldWait | undefined;
  private running = false;
  private rerun = false;

  /** The queue registers' fields, resolved once (the queue runs per page group response). */
  private readonly reg: { dw: FieldRef; qs: FieldRef; iqa: FieldRef; qt: FieldRef; qh: FieldRef; iwc: FieldRef; fsts: RegRef };

  constructor(private readonly h: QueueHost) {
    const rf = h.rf;
    this.reg = {
      dw: rf.fieldRef('IQA', 'DW'), qs: rf.fieldRef('IQA', 'QS'), iqa: rf.fieldRef('IQA', 'IQA'),
      qt: rf.fieldRef('IQT', 'QT'), qh: rf.fieldRef('IQH', 'QH'), iwc: rf.fieldRef('ICS', 'IWC'), fsts: rf.ref('FSTS'),
    };
    this.point = h.ctx.faults.define(VTD_INJECTION_POINTS)['vtd.inv_queue_process'];
    this.cDesc = h.ctx.counters.counter(`${h.name}.qi.descriptors`);
    this.cErr = h.ctx.counters.counter(`${h.name}.qi.errors`);
    this.cWait = h.ctx.counters.counter(`${h.name}.qi.waits`);
    this.cAborted = h.ctx.counters.counter(`${h.name}.qi.waits_aborted`);
  }

  /** A wait descriptor is held for device-TLB invalidation completions. */
  get waiting(): boolean {
    return this.held !== undefined;
  }

  /** Fetch and execute descriptors from IQH to IQT (re-entrant calls run after the current pass). */
  process(): void {
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.rerun = false;
        this.run();
      } while (this.rerun);
    } finally {
      this.running = false;
    }
  }

  private run(): void {
    const { mem } = this.h;
    const reg = this.reg;
    if (!this.h.qiEnabled() || (reg.fsts.get() & (FSTS_IQE | FSTS_ITE)) !== 0 || this.held !== undefined) return;
    const dw = reg.dw.get() !== 0;
    const descBytes = dw ? 32 : 16;
    const qbytes = 4096 * 2 ** reg.qs.get();
    // IQA[63:12]; bits at or above HAW are not address bits (dropped by a floor by a power of two: exact, and no runtime call as a remainder of doubles is).
    const iqa = reg.iqa.get();
    const span = 2 ** (this.h.caps.haw - 12);
    const base = (iqa - Math.floor(iqa / span) * span) * 4096;
    // QT and QH are 128-bit descriptor indexes (bits 18:4 of the byte offset).
    const tail = reg.qt.get() * 16;
    let head = reg.qh.get() * 16;
    if (head === tail) return;
    if (tail % descBytes !== 0) return this.error(IQEI.TAIL_MISALIGNED, head, 0);
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
      // A descriptor whose fetch already failed is reported as such: nothing injected there would change it.
      const inj = this.point.check(this.point.armed ? { head } : undefined, ok ? this.point.actions : NO_ACTIONS);
      if (!ok || inj?.kind === 'fail') return this.error(IQEI.FETCH_ERROR, head, 0);
      if (inj?.kind === 'corrupt') {
        w[0] = (w[0]! ^ inj.xorLo) >>> 0;
        w[1] = (w[1]! ^ (inj.xorHi ?? 0)) >>> 0;
      }
      let r = 0;
      if (inj?.kind !== 'drop') {
        r = this.execute(w, head / descBytes);
        if (r > 0) return this.error(r, head, descType(w));
      }
      head = (head + descBytes) % qbytes;
      reg.qh.set(head / 16);
      if (r === HELD) return;
    }
  }

  /** Run one descriptor; 0, HELD, or the IQEI of why it is invalid. */
  private execute(w: Uint32Array, index: number): number {
    const { caps, inv } = this.h;
    const type = descType(w);
    const layout = DESC_LAYOUT_OF[type];
    if (layout === undefined || type === DESC_IEC) return IQEI.INVALID_TYPE;
    if ((type === DESC_DEV_TLB || type === DESC_P_DEV_TLB) && !caps.deviceTlb) return IQEI.INVALID_TYPE;
    if (type === DESC_PGRP_RESP && !caps.pageRequests) return IQEI.INVALID_TYPE;
    if (hasReservedBits(layout, w)) return IQEI.RESERVED_FIELD;
    this.cDesc.value++;
    if (this.h.ctx.tracer.wants('vtd.qi.desc')) {
      this.h.ctx.tracer.trace('vtd.qi.desc', this.h.name, { index, type: DESC_NAMES[type]!, desc: formatLayout(layout, w) });
    }
    switch (type) {
      case DESC_CC: {
        const g = rd(CC_INV_DESC, w, 'G');
        const did = rd(CC_INV_DESC, w, 'DID');
        if (g === 0) return IQEI.RESERVED_FIELD;
        if (g === G_GLOBAL) inv.contextGlobal();
        else if (g === G_DOMAIN) inv.contextDomain(did);
        else inv.contextDevice(did, rd(CC_INV_DESC, w, 'SID'), rd(CC_INV_DESC, w, 'FM'));
        return 0;
      }
      case DESC_IOTLB: {
        const g = rd(IOTLB_INV_DESC, w, 'G');
        const did = rd(IOTLB_INV_DESC, w, 'DID');
        const am = rd(IOTLB_INV_DESC, w, 'AM');
        if (g === 0 || (g === G_PAGE && am > caps.mamv)) return IQEI.RESERVED_FIELD;
        if (g === G_GLOBAL) inv.iotlbGlobal();
        else if (g === G_DOMAIN) inv.iotlbDomain(did);
        else inv.iotlbPages(did, rd(IOTLB_INV_DESC, w, 'ADDR') * 4096, am);
        return 0;
      }
      case DESC_P_IOTLB: {
        const g = rd(P_IOTLB_INV_DESC, w, 'G');
        const did = rd(P_IOTLB_INV_DESC, w, 'DID');
        const am = rd(P_IOTLB_INV_DESC, w, 'AM');
        // G 10: PASID-selective, 11: page-selective-within-PASID; 0x reserved.
        if (g < 2 || (g === 3 && am > caps.mamv)) return IQEI.RESERVED_FIELD;
        const pasid = rd(P_IOTLB_INV_DESC, w, 'PASID');
        if (g === 2) inv.piotlbPasid(did, pasid);
        else inv.piotlbPages(did, pasid, rd(P_IOTLB_INV_DESC, w, 'ADDR') * 4096, am);
        return 0;
      }
      case DESC_PC: {
        // G 00: domain-selective, 01: PASID-selective, 11: global; 10 reserved.
        const g = rd(PC_INV_DESC, w, 'G');
        const did = rd(PC_INV_DESC, w, 'DID');
        if (g === 2) return IQEI.RESERVED_FIELD;
        if (g === 0) inv.pasidDomain(did);
        else if (g === 1) inv.pasidSelective(did, rd(PC_INV_DESC, w, 'PASID'));
        else inv.pasidGlobal();
        return 0;
      }
      case DESC_DEV_TLB: {
        const d = DEV_TLB_INV_DESC;
        const r = devTlbRange(rd(d, w, 'ADDR'), rd(d, w, 'S') !== 0);
        this.h.devtlb.issue(rd(d, w, 'SID'), rd(d, w, 'MIP'), { pasid: -1, global: false, addr: r.addr, size: r.size });
        return 0;
      }
      case DESC_P_DEV_TLB: {
        const d = P_DEV_TLB_INV_DESC;
        const r = devTlbRange(rd(d, w, 'ADDR'), rd(d, w, 'S') !== 0);
        const req = { pasid: rd(d, w, 'PASID'), global: rd(d, w, 'G') !== 0, addr: r.addr, size: r.size };
        this.h.devtlb.issue(rd(d, w, 'SID'), rd(d, w, 'MIP'), req);
        return 0;
      }
      case DESC_PGRP_RESP:
        return this.pageGroupResponse(w);
      case DESC_INV_WAIT:
        return this.wait(w);
      default:
        return IQEI.INVALID_TYPE;
    }
  }

  /** Page group response (§6.5.2.x): RC to RID for PRGI (with PASID when PP). */
  private pageGroupResponse(w: Uint32Array): number {
    const d = PGRP_RESP_DESC;
    const rc = rd(d, w, 'RC');
    const code: PrgResponseCode | undefined =
      rc === PGRP_RC_SUCCESS ? 'success' : rc === PGRP_RC_INVALID ? 'invalid' : rc === PGRP_RC_FAILURE ? 'failure' : undefined;
    if (code === undefined) return IQEI.RESERVED_FIELD;
    const pasid = rd(d, w, 'PP') !== 0 ? rd(d, w, 'PASID') : -1;
    this.h.prgResponse(rd(d, w, 'RID'), pasid, rd(d, w, 'PRGI'), code);
    return 0;
  }

  /** §6.5.2.8: status write, completion interrupt; held while device-TLB invalidations are outstanding. */
  private wait(w: Uint32Array): number {
    const d = INV_WAIT_DESC;
    if (rd(d, w, 'PD') !== 0 && !this.h.caps.pageRequests) return IQEI.RESERVED_FIELD; // PD needs ECAP.PDS
    const hw: HeldWait = {
      sw: rd(d, w, 'SW') !== 0, irq: rd(d, w, 'IF') !== 0, addr: waitStatusAddr(w), data: rd(d, w, 'STDATA'), fence: rd(d, w, 'FN') !== 0,
    };
    if (this.h.devtlb.pending > 0) {
      this.held = hw;
      return HELD;
    }
    this.complete(hw);
    return 0;
  }

  private complete(hw: HeldWait): void {
    const { mem } = this.h;
    this.cWait.value++;
    if (hw.sw) mem.write32(hw.addr, hw.data);
    if (hw.irq) {
      if (this.reg.iwc.get() === 0) {
        this.reg.iwc.set(1);
        this.h.invEvent.raise();
      }
    }
    if (this.h.ctx.tracer.wants('vtd.qi.wait')) {
      this.h.ctx.tracer.trace('vtd.qi.wait', this.h.name, { statusWrite: hw.sw, addr: hw.addr, data: hw.data, interrupt: hw.irq, fence: hw.fence });
    }
  }

  /** Every device-TLB invalidation completed: finish the held wait and fetch on. */
  devTlbIdle(): void {
    const hw = this.held;
    if (hw === undefined) return;
    this.held = undefined;
    this.complete(hw);
    this.process();
  }

  /** A device-TLB invalidation of `sid` timed out: ITE, the held wait is aborted. */
  devTlbTimeout(sid: number): void {
    const rf = this.h.rf;
    rf.setField('IQERCD', 'ITESID', sid & 0xffff);
    if (this.held !== undefined) {
      this.cAborted.value++;
      this.held = undefined;
    }
    this.h.faultRecorder.setStatus(FSTS_ITE);
  }

  /** A completion nobody waits for: ICE with its source-id. */
  unexpectedCompletion(sid: number): void {
    const rf = this.h.rf;
    rf.setField('IQERCD', 'ICESID', sid & 0xffff);
    this.h.faultRecorder.setStatus(FSTS_ICE);
  }

  /** Queued invalidation was disabled: a held wait is dropped. */
  reset(): void {
    this.held = undefined;
  }

  private error(iqei: number, head: number, type: number): void {
    const rf = this.h.rf;
    this.cErr.value++;
    rf.setField('IQERCD', 'IQEI', iqei);
    this.h.faultRecorder.setStatus(FSTS_IQE);
    if (this.h.ctx.tracer.wants('vtd.qi.error')) this.h.ctx.tracer.trace('vtd.qi.error', this.h.name, { head, iqei, type });
  }
}
