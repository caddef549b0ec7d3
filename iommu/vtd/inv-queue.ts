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
import { formatLayout } from '../../src/hw/layout.ts';
import type { RegisterFile } from '../../src/hw/register-file.ts';
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
  DESC_CC, DESC_DEV_TLB, DESC_IEC, DESC_INV_WAIT, DESC_IOTLB, DESC_LAYOUTS, DESC_PC, DESC_PGRP_RESP, DESC_P_DEV_TLB,
  DESC_P_IOTLB, PGRP_RC_FAILURE, PGRP_RC_INVALID, PGRP_RC_SUCCESS, descAddr, descAddrField, descType, devTlbRange, waitStatusAddr,
} from './inv-desc.ts';
import { FSTS_ICE, FSTS_IQE, FSTS_ITE, IQEI, type VtdCaps } from './regs.ts';
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

  constructor(private readonly h: QueueHost) {
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
    const { rf, mem } = this.h;
    if (!this.h.qiEnabled() || (rf.get('FSTS') & (FSTS_IQE | FSTS_ITE)) !== 0 || this.held !== undefined) return;
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
      rf.set('IQH', head, 0);
      if (r === HELD) return;
    }
  }

  /** Run one descriptor; 0, HELD, or the IQEI of why it is invalid. */
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
      case DESC_DEV_TLB: {
        // SID 47:32, MIP 20:16, S 64, ADDR 127:76.
        const r = devTlbRange(descAddrField(w), (w[2]! & 1) !== 0);
        this.h.devtlb.issue(w[1]! & 0xffff, (w[0]! >>> 16) & 0x1f, { pasid: -1, global: false, addr: r.addr, size: r.size });
        return 0;
      }
      case DESC_P_DEV_TLB: {
        // MIP 8:4, SID 31:16, PASID 51:32, G 64, S 75, ADDR 127:76.
        const r = devTlbRange(descAddrField(w), ((w[2]! >>> 11) & 1) !== 0);
        const req = { pasid: w[1]! & 0xfffff, global: (w[2]! & 1) !== 0, addr: r.addr, size: r.size };
        this.h.devtlb.issue(w[0]! >>> 16, (w[0]! >>> 4) & 0x1f, req);
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
    const rc = (w[0]! >>> 12) & 0xf;
    const code: PrgResponseCode | undefined =
      rc === PGRP_RC_SUCCESS ? 'success' : rc === PGRP_RC_INVALID ? 'invalid' : rc === PGRP_RC_FAILURE ? 'failure' : undefined;
    if (code === undefined) return IQEI.RESERVED_FIELD;
    const pasid = (w[0]! & 0x10) !== 0 ? w[1]! & 0xfffff : -1;
    this.h.prgResponse(w[0]! >>> 16, pasid, (w[2]! >>> 3) & 0x1ff, code);
    return 0;
  }

  /** §6.5.2.8: status write, completion interrupt; held while device-TLB invalidations are outstanding. */
  private wait(w: Uint32Array): number {
    const flags = w[0]!;
    if ((flags & 0x80) !== 0 && !this.h.caps.pageRequests) return IQEI.RESERVED_FIELD; // PD needs ECAP.PDS
    const hw: HeldWait = { sw: (flags & 0x20) !== 0, irq: (flags & 0x10) !== 0, addr: waitStatusAddr(w), data: w[1]!, fence: (flags & 0x40) !== 0 };
    if (this.h.devtlb.pending > 0) {
      this.held = hw;
      return HELD;
    }
    this.complete(hw);
    return 0;
  }

  private complete(hw: HeldWait): void {
    const { rf, mem } = this.h;
    this.cWait.value++;
    if (hw.sw) mem.write32(hw.addr, hw.data);
    if (hw.irq) {
      const ics = rf.get('ICS');
      if ((ics & 1) === 0) {
        rf.set('ICS', (ics | 1) >>> 0);
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
    rf.set('IQERCD', rf.get('IQERCD'), ((rf.getHi('IQERCD') & 0xffff_0000) | (sid & 0xffff)) >>> 0);
    if (this.held !== undefined) {
      this.cAborted.value++;
      this.held = undefined;
    }
    this.h.faultRecorder.setStatus(FSTS_ITE);
  }

  /** A completion nobody waits for: ICE with its source-id. */
  unexpectedCompletion(sid: number): void {
    const rf = this.h.rf;
    rf.set('IQERCD', rf.get('IQERCD'), ((rf.getHi('IQERCD') & 0xffff) | ((sid & 0xffff) << 16)) >>> 0);
    this.h.faultRecorder.setStatus(FSTS_ICE);
  }

  /** Queued invalidation was disabled: a held wait is dropped. */
  reset(): void {
    this.held = undefined;
  }

  private error(iqei: number, head: number, type: number): void {
    const rf = this.h.rf;
    this.cErr.value++;
    rf.set('IQERCD', (rf.get('IQERCD') & ~0xf) | iqei, rf.getHi('IQERCD'));
    this.h.faultRecorder.setStatus(FSTS_IQE);
    if (this.h.ctx.tracer.wants('vtd.qi.error')) this.h.ctx.tracer.trace('vtd.qi.error', this.h.name, { head, iqei, type });
  }
}
