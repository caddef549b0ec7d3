/**
 * Page requests (VT-d spec §7.5 "Page Request Handling", rev. 3.x
 * numbering) and the page request queue (PQA §10.4.33: 2^PQS 4 KiB pages of
 * 256-bit descriptors, 2^(PQS+7) entries; the unit writes at PQT, software
 * consumes from PQH).
 *
 * A Page Request Message from a device is checked against its context entry
 * (scalable mode, PRE = 1, PASIDE for requests with PASID, PASID within the
 * directory); a blocked request records a fault (FRCD T1:T2 = 01: 0x32 in
 * legacy mode, 0x47 for PRE clear, or the context entry's own fault) and,
 * when it ends its group (LPIG), is answered Invalid Request by the unit.
 *
 * Queue full (PQT + 1 = PQH) sets PRS.PRO; while PRO is set every request is
 * discarded. A discarded request that ends its group (LPIG, not a stop
 * marker) gets an automatic Page Group Response of Success from the unit,
 * so the device retries its translation and asks again once software has
 * drained the queue (the same recovery the RISC-V IOMMU specifies).
 *
 * Otherwise the descriptor is written at PQT, PQT advances and, when PPR was
 * clear, PPR is set. A page request event (PECTL/PEDATA/PEADDR) is raised
 * when PPR or PRO becomes set while both were clear.
 *
 * No IOTLB entry is invalidated implicitly on a page request: an IOTLB hit
 * lacking the right re-walks anyway (translate.ts), so a permission the
 * handler grants is seen.
 */
import { VTD_INJECTION_POINTS } from './points.ts';
import { defineLayout, setBits } from '../../src/hw/layout.ts';
import type { FieldRef, RegRef, RegisterFile } from '../../src/hw/register-file.ts';
import type { InjectionPoint } from '../../src/fault/injector.ts';
import { MEMTX_OK, type PhysMem } from '../../src/memory/phys-mem.ts';
import type { PageRequestMessage, PrgResponseCode } from '../../src/pci/ats-messages.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import { FR, isQualifiedFault } from './fault-reasons.ts';
import { FaultInfo, type FaultRecorder } from './faults.ts';
import type { EventInterrupt } from './interrupts.ts';
import { PRS_PPR, PRS_PRO, TTM_LEGACY, TTM_SCALABLE, type VtdRegMap } from './regs.ts';
import { pasidDirIndex } from './pasid-entry.ts';
import type { Translator } from './translate.ts';

/**
 * Page Request Descriptor (§7.5.1, 256 bits): TYPE 01h, PP (PASID present),
 * RID, PASID, EXE/PM (execute / privileged-mode requested), RDR/WRR (read /
 * write requested), LPIG (last page in group), PRGI (group index), ADDR
 * (page address 63:12); bits 255:128 private data (never present here).
 */
export const PAGE_REQ_DESC = defineLayout('PAGE_REQ_DESC', 32, [
  ['TYPE', 7, 0], ['PP', 8], ['RID', 31, 16], ['PASID', 51, 32], ['EXE', 52], ['PM', 53],
  ['RDR', 64], ['WRR', 65], ['LPIG', 66], ['PRGI', 75, 67], ['ADDR', 127, 76],
  ['PRIV_DATA0', 159, 128], ['PRIV_DATA1', 191, 160], ['PRIV_DATA2', 223, 192], ['PRIV_DATA3', 255, 224],
] as const);
export const PAGE_REQ_TYPE = 1;
const PRD = PAGE_REQ_DESC.fields;
export const PRQ_DESC_BYTES = 32;

export interface PrqHost {
  readonly ctx: SimContext;
  readonly name: string;
  readonly rf: RegisterFile<VtdRegMap>;
  readonly mem: PhysMem;
  readonly prqEvent: EventInterrupt;
  readonly faultRecorder: FaultRecorder;
  readonly translationEnabled: boolean;
  /** Latched TTM (legacy / scalable). */
  readonly ttm: number;
  /** Send a Page Group Response the unit generates itself. */
  autoRespond(rid: number, pasid: number, prgIndex: number, code: PrgResponseCode): void;
}

export class PageRequestQueue {
  private readonly fi = new FaultInfo();
  /** Scratch for one descriptor: the memory write copies it at once. */
  private readonly descBytes = new Uint8Array(PRQ_DESC_BYTES);
  private readonly descWords = new Uint32Array(PRQ_DESC_BYTES / 4);
  private readonly descView = new DataView(this.descBytes.buffer);
  private readonly point: InjectionPoint;
  private readonly cRequests: Counter;
  private readonly cQueued: Counter;
  private readonly cOverflow: Counter;
  private readonly cBlocked: Counter;

  constructor(
    private readonly h: PrqHost,
    private readonly xlate: Translator,
    private readonly pasidLimit: number,
  ) {
    this.point = h.ctx.faults.define(VTD_INJECTION_POINTS)['vtd.prq_write'];
    const c = h.ctx.counters;
    this.cRequests = c.counter(`${h.name}.prq.requests`);
    this.cQueued = c.counter(`${h.name}.prq.queued`);
    this.cOverflow = c.counter(`${h.name}.prq.overflow`);
    this.cBlocked = c.counter(`${h.name}.prq.blocked`);
    const rf = h.rf;
    this.prs = rf.ref('PRS');
    this.reg = { pqs: rf.fieldRef('PQA', 'PQS'), pqa: rf.fieldRef('PQA', 'PQA'), pqt: rf.fieldRef('PQT', 'PQT'), pqh: rf.fieldRef('PQH', 'PQH') };
  }

  /** The queue registers' fields, resolved once (a page request per fault). */
  private readonly reg: { pqs: FieldRef; pqa: FieldRef; pqt: FieldRef; pqh: FieldRef };
  /** PRS, resolved once (read per page request). */
  private readonly prs: RegRef;

  /** A Page Request Message arrived from a device. */
  receive(m: PageRequestMessage): void {
    this.cRequests.value++;
    const code = this.check(m);
    if (code < 0) {
      this.cBlocked.value++;
      return this.answer(m, 'invalid');
    }
    if (code > 0) {
      this.cBlocked.value++;
      this.record(m, code, this.xlate.fpd);
      return this.answer(m, 'invalid');
    }
    const prs = this.prs.get();
    const reg = this.reg;
    const qbytes = 4096 * 2 ** reg.pqs.get();
    const base = reg.pqa.get() * 4096;
    // PQT and PQH index 256-bit descriptors (bits 18:5 of the byte offset).
    const tail = (reg.pqt.get() * PRQ_DESC_BYTES) % qbytes;
    const head = (reg.pqh.get() * PRQ_DESC_BYTES) % qbytes;
    const next = (tail + PRQ_DESC_BYTES) % qbytes;
    if ((prs & PRS_PRO) !== 0 || next === head) {
      this.overflow(m, prs);
      return;
    }
    // Field by field into a zeroed scratch (not encodeLayout's literal and name lookups): one descriptor per page request.
    const w = this.descWords.fill(0);
    const stop = m.stopMarker;
    setBits(w, PRD.TYPE, PAGE_REQ_TYPE);
    if (m.pasid >= 0) {
      setBits(w, PRD.PP, 1);
      setBits(w, PRD.PASID, m.pasid & 0xfffff);
    }
    setBits(w, PRD.RID, m.requesterId & 0xffff);
    if (m.exec) setBits(w, PRD.EXE, 1);
    if (m.privileged) setBits(w, PRD.PM, 1);
    if (m.read && !stop) setBits(w, PRD.RDR, 1);
    if (m.write && !stop) setBits(w, PRD.WRR, 1);
    if (m.last || stop) setBits(w, PRD.LPIG, 1);
    setBits(w, PRD.PRGI, m.prgIndex & 0x1ff);
    setBits(w, PRD.ADDR, Math.floor(m.addr / 4096));
    const inj = this.point.check(this.point.armed ? { sid: m.requesterId, pasid: m.pasid, addr: m.addr } : undefined);
    if (inj?.kind === 'drop') return;
    if (inj?.kind === 'corrupt') {
      w[0] = (w[0]! ^ inj.xorLo) >>> 0;
      w[2] = (w[2]! ^ (inj.xorHi ?? 0)) >>> 0;
    }
    const bytes = this.descBytes;
    const dv = this.descView;
    for (let i = 0; i < 8; i++) dv.setUint32(4 * i, w[i]!, true);
    if (inj?.kind === 'fail' || this.h.mem.writeFrom(base + tail, bytes) !== MEMTX_OK) {
      // The queue cannot be written: the request is lost; its group fails.
      return this.answer(m, 'failure');
    }
    reg.pqt.set(next / PRQ_DESC_BYTES);
    this.cQueued.value++;
    if (this.h.ctx.tracer.wants('vtd.prq.write')) {
      this.h.ctx.tracer.trace('vtd.prq.write', this.h.name, {
        index: tail / PRQ_DESC_BYTES, sid: m.requesterId, pasid: m.pasid, addr: m.addr, prgi: m.prgIndex, lpig: m.last, read: m.read, write: m.write,
      });
    }
    if ((prs & PRS_PPR) === 0) {
      this.prs.set((prs | PRS_PPR) >>> 0);
      if ((prs & PRS_PRO) === 0) this.h.prqEvent.raise();
    }
  }

  /** 0 when the request may be queued, a fault reason to record, or -1 to refuse it without a record. */
  private check(m: PageRequestMessage): number {
    const sid = m.requesterId & 0xffff;
    if (!this.h.translationEnabled) return -1;
    if (this.h.ttm === TTM_LEGACY) {
      this.xlate.fpd = false;
      return FR.LEGACY_PAGE_REQUEST;
    }
    if (this.h.ttm !== TTM_SCALABLE) {
      this.xlate.fpd = false;
      return FR.RTADDR_INVALID;
    }
    const c = this.xlate.context(sid);
    // Not loaded: xlate.fpd is the FPD of the context entry if one was read (non-present with FPD).
    if (c === null) return this.xlate.fi.code;
    if (!c.scalable) return -1;
    this.xlate.fpd = c.fpd;
    if (!c.pre) return FR.SM_PRE;
    if (m.pasid >= 0 && !c.paside) return FR.SM_PASIDE;
    if (m.pasid >= 0 && (pasidDirIndex(m.pasid) >= c.dirEntries || m.pasid >= this.pasidLimit)) return FR.SM_PASID_LARGE;
    return 0;
  }

  private overflow(m: PageRequestMessage, prs: number): void {
    this.cOverflow.value++;
    const needs = m.last && !m.stopMarker;
    if (this.h.ctx.tracer.wants('vtd.prq.overflow')) {
      this.h.ctx.tracer.trace('vtd.prq.overflow', this.h.name, {
        sid: m.requesterId, pasid: m.pasid, addr: m.addr, prgi: m.prgIndex, autoResponse: needs ? 'success' : 'none',
      });
    }
    if ((prs & PRS_PRO) === 0) {
      this.h.rf.set('PRS', (prs | PRS_PRO) >>> 0);
      if ((prs & PRS_PPR) === 0) this.h.prqEvent.raise();
    }
    if (needs) this.h.autoRespond(m.requesterId, m.pasid, m.prgIndex, 'success');
  }

  /** Answer a request the unit does not queue, if its group expects an answer. */
  private answer(m: PageRequestMessage, code: PrgResponseCode): void {
    if (m.last && !m.stopMarker) this.h.autoRespond(m.requesterId, m.pasid, m.prgIndex, code);
  }

  private record(m: PageRequestMessage, code: number, fpd: boolean): void {
    if (fpd && isQualifiedFault(code)) return;
    const f = this.fi;
    f.code = code;
    f.sid = m.requesterId & 0xffff;
    f.pasid = m.pasid;
    f.addr = m.addr;
    f.write = m.write;
    f.priv = m.pasid >= 0 && m.privileged;
    f.exec = m.pasid >= 0 && m.exec;
    f.at = 'untranslated';
    f.pageReq = true;
    this.h.faultRecorder.record(f);
  }
}
