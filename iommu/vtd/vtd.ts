/**
 * Intel VT-d remapping hardware unit (DMAR): DMA remapping in legacy and
 * scalable mode (first-stage, second-stage, nested, pass-through),
 * context/PASID caches and an IOTLB that change only on invalidation,
 * register-based and queued invalidation, primary fault logging with the
 * fault event interrupt, device-TLBs (ATS translation requests, translated
 * requests, device-TLB invalidation with completion tracking and time-out)
 * and the page request queue with page group responses. Programmed only
 * through its MMIO registers (`region`) and structures in memory (`mem`);
 * ATS/PRI messages come from the root complex (AtsTranslationAgent) and go
 * back through `downstream`. Not modelled: interrupt remapping.
 */
import { VTD_INJECTION_POINTS } from './points.ts';
import type { InjectionPoint } from '../../src/fault/injector.ts';
import { RegisterFile } from '../../src/hw/register-file.ts';
import { MemoryRegion } from '../../src/memory/memory-region.ts';
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import type {
  AtsInvalidationRequest, AtsTranslationAgent, AtsTranslationCompletion, AtsTranslationRequest, PageRequestMessage, PrgResponse,
  PrgResponseCode,
} from '../../src/pci/ats-messages.ts';
import type { DmaRemapper, TranslationAnswer } from '../../src/pci/remapper.ts';
import type { DmaTransaction } from '../../src/pci/transaction.ts';
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import { AtsResponder } from './ats.ts';
import { ContextCache, PasidCache } from './caches.ts';
import { DevTlbInvalidator } from './devtlb.ts';
import { faultName, isQualifiedFault } from './fault-reasons.ts';
import { FaultRecorder } from './faults.ts';
import { EventInterrupt, type EventKind } from './interrupts.ts';
import { InvQueue } from './inv-queue.ts';
import { Invalidator, contextCommand, iotlbCommand } from './invalidate.ts';
import { Iotlb } from './iotlb.ts';
import {
  FSTS_IQE, FSTS_ITE, PRS_PPR, PRS_PRO, GCMD_QIE, GCMD_SRTP, GCMD_TE, GSTS_QIES, GSTS_RTPS, GSTS_TES, MAX_FAULT_RECORDS, TTM_LEGACY, TTM_SCALABLE,
  VTD_MMIO_SIZE, vtdRegisters, type VtdCaps, type VtdRegMap,
} from './regs.ts';
import { StructureLoader } from './structures.ts';
import { PageRequestQueue } from './prq.ts';
import * as xl from './translate.ts';
import { Translator } from './translate.ts';
import { WalkMem } from '../pgtable/walk-mem.ts';

// Module-local copies (imported bindings are getter calls when tsx loads the tree as CommonJS; translate() reads these per transaction).
const IRQ_FIRST = xl.IRQ_FIRST;
const IRQ_END = xl.IRQ_END;

export interface VtdOptions {
  /** Trace source and counter prefix (default 'vtd'). */
  name?: string;
  /** Host address width, 39..52 (default 48). */
  haw?: number;
  /** 5-level second-stage (SAGAW) and first-stage (FL5LP) tables (default true). */
  fiveLevel?: boolean;
  /** Fault recording registers, 1..64 (default 8). */
  faultRecords?: number;
  /** IOTLB entries (default 1024). */
  iotlbEntries?: number;
  /** PASID width in bits, 1..20 (default 20). */
  pasidBits?: number;
  /** Device-TLB support, ECAP.DT (default true). */
  deviceTlb?: boolean;
  /** Page request queue, ECAP.PRS and PDS (default true). */
  pageRequests?: boolean;
  /** Snoop control, ECAP.SC (default true). */
  snoopControl?: boolean;
  /** Virtual ns a device has to complete a device-TLB invalidation before ITE (default 1 ms). */
  atsInvalidationTimeoutNs?: number;
  /**
   * Virtual ns each paging-structure read of a walk adds to a request's or
   * ATS Translation Request's latency (default 100: one DRAM access). IOTLB
   * hits cost nothing.
   */
  walkReadNs?: number;
  /** Virtual ns each root/context/PASID-directory/PASID-table entry fetch adds (default 100). */
  tableFetchNs?: number;
  /**
   * Where ATS invalidation requests and PRG responses go (the root complex).
   * Default: `ctx.rc` when the context is a Board.
   */
  downstream?: AtsDownstream;
}

/** The downstream half of the ATS/PRI protocol (RootComplex). */
export interface AtsDownstream {
  sendAtsInvalidation(requesterId: number, req: AtsInvalidationRequest): boolean;
  sendPrgResponse(requesterId: number, resp: PrgResponse): boolean;
}

/**
 * The unit as its ATS responder and page request queue see it: whether
 * translation is on, and the translation table mode, read through
 * prototype getters. Not getters in an object literal: V8 gives every
 * such literal a hidden class of its own, kept in the old generation, and
 * through the getters' closures it held the whole machine through every
 * young collection after the machine was dropped (src/lib/young.ts).
 */
class VtdLink {
  constructor(
    private readonly unit: VtdIommu,
    private readonly xlate: Translator,
  ) {}

  get translationEnabled(): boolean {
    return this.unit.translationEnabled;
  }

  get ttm(): number {
    return this.xlate.ttm;
  }
}

export class VtdIommu implements DmaRemapper, AtsTranslationAgent {
  readonly name: string;
  readonly caps: VtdCaps;
  readonly rf: RegisterFile<VtdRegMap>;
  /** The 4 KiB register window; the board places it at layout.iommuBase. */
  readonly region: MemoryRegion;
  readonly contextCache = new ContextCache();
  readonly pasidCache = new PasidCache();
  readonly iotlb: Iotlb;
  readonly inv: Invalidator;
  readonly faultEvent: EventInterrupt;
  readonly invEvent: EventInterrupt;
  readonly prqEvent: EventInterrupt;
  readonly faultRecorder: FaultRecorder;
  readonly devtlb: DevTlbInvalidator;
  readonly downstream: AtsDownstream | undefined;
  private readonly queue: InvQueue;
  private readonly xlate: Translator;
  private readonly ats: AtsResponder;
  private readonly prq: PageRequestQueue;
  private readonly prgPoint: InjectionPoint;
  private readonly cPrgResponses: Counter;
  private te = false;
  private qie = false;
  private readonly msiPoint: InjectionPoint;
  private readonly cTranslations: Counter;
  private readonly cFaults: Counter;
  private readonly cSuppressed: Counter;
  private readonly cIrq: Counter;
  private readonly loader: StructureLoader;
  private readonly cWalkReads: Counter;
  private readonly walkReadNs: number;
  private readonly tableFetchNs: number;

  constructor(
    readonly ctx: SimContext,
    readonly mem: PhysMem,
    options: VtdOptions = {},
  ) {
    const name = (this.name = options.name ?? 'vtd');
    this.caps = {
      haw: clampInt(options.haw ?? 48, 39, 52),
      fiveLevel: options.fiveLevel ?? true,
      nfr: clampInt(options.faultRecords ?? 8, 1, MAX_FAULT_RECORDS),
      mamv: 18,
      pasidBits: clampInt(options.pasidBits ?? 20, 1, 20),
      deviceTlb: options.deviceTlb ?? true,
      pageRequests: options.pageRequests ?? true,
      snoopControl: options.snoopControl ?? true,
    };
    const rc = (ctx as { rc?: Partial<AtsDownstream> }).rc;
    this.downstream = options.downstream ?? (typeof rc?.sendAtsInvalidation === 'function' ? (rc as AtsDownstream) : undefined);
    const c = ctx.counters;
    this.rf = new RegisterFile(name, VTD_MMIO_SIZE, vtdRegisters(this.caps));
    this.region = MemoryRegion.mmio(name, VTD_MMIO_SIZE, this.rf.ops, { minAccess: 4, maxAccess: 8 });
    this.iotlb = new Iotlb(clampInt(options.iotlbEntries ?? 1024, 1, 1 << 20), {
      hit: c.counter(`${name}.iotlb.hit`),
      miss: c.counter(`${name}.iotlb.miss`),
      evict: c.counter(`${name}.iotlb.evict`),
      invalidated: c.counter(`${name}.iotlb.invalidated`),
    });
    this.inv = new Invalidator(this.contextCache, this.pasidCache, this.iotlb, ctx, name);
    const send = (kind: EventKind, addr: number, data: number) => this.sendMsi(kind, addr, data);
    this.faultEvent = new EventInterrupt(this.rf, 'fault', { ctl: 'FECTL', data: 'FEDATA', addr: 'FEADDR', uaddr: 'FEUADDR' }, send);
    this.invEvent = new EventInterrupt(this.rf, 'inv', { ctl: 'IECTL', data: 'IEDATA', addr: 'IEADDR', uaddr: 'IEUADDR' }, send);
    this.prqEvent = new EventInterrupt(this.rf, 'prq', { ctl: 'PECTL', data: 'PEDATA', addr: 'PEADDR', uaddr: 'PEUADDR' }, send);
    this.faultRecorder = new FaultRecorder(this.rf, this.caps.nfr, this.faultEvent, ctx, name);
    const walkMem = new WalkMem(mem, ctx.faults.define(VTD_INJECTION_POINTS)['vtd.walk_read'], { dropFails: true });
    const loader = (this.loader = new StructureLoader(mem, walkMem, this.caps, ctx, name));
    this.cWalkReads = c.counter(`${name}.walk.reads`);
    this.walkReadNs = costNs(options.walkReadNs, VTD_WALK_READ_NS);
    this.tableFetchNs = costNs(options.tableFetchNs, VTD_TABLE_FETCH_NS);
    this.xlate = new Translator(this.caps, ctx, name, loader, this.contextCache, this.pasidCache, this.iotlb);
    const timeout = options.atsInvalidationTimeoutNs ?? 1_000_000;
    this.devtlb = new DevTlbInvalidator({
      ctx, name,
      port: () => this.downstream,
      timedOut: (sid) => this.queue.devTlbTimeout(sid),
      unexpectedCompletion: (sid) => this.queue.unexpectedCompletion(sid),
      idle: () => this.queue.devTlbIdle(),
    }, Number.isFinite(timeout) && timeout > 0 ? timeout : 1_000_000);
    this.queue = new InvQueue(this);
    this.ats = new AtsResponder(Object.assign(new VtdLink(this, this.xlate), {
      ctx, name,
      recordFault: (out: TranslationAnswer) => this.fault(out),
    }), this.xlate);
    this.prq = new PageRequestQueue(Object.assign(new VtdLink(this, this.xlate), {
      ctx, name, rf: this.rf, mem, prqEvent: this.prqEvent, faultRecorder: this.faultRecorder,
      autoRespond: (rid: number, pasid: number, prg: number, code: PrgResponseCode) => this.prgResponse(rid, pasid, prg, code, true),
    }), this.xlate, 2 ** this.caps.pasidBits);
    this.prgPoint = ctx.faults.define(VTD_INJECTION_POINTS)['vtd.prg_response'];
    this.cPrgResponses = c.counter(`${name}.prg.responses`);
    this.msiPoint = ctx.faults.define(VTD_INJECTION_POINTS)['vtd.msi'];
    this.cTranslations = c.counter(`${name}.translations`);
    this.cFaults = c.counter(`${name}.faults`);
    this.cSuppressed = c.counter(`${name}.faults.suppressed`);
    this.cIrq = c.counter(`${name}.irq`);
    this.hookRegisters();
  }

  /** GSTS.TES: DMA remapping is on. */
  get translationEnabled(): boolean {
    return this.te;
  }

  /** The mode latched by the last SRTP: 'legacy', 'scalable' or 'invalid'. */
  get mode(): string {
    const t = this.xlate.ttm;
    return t === TTM_LEGACY ? 'legacy' : t === TTM_SCALABLE ? 'scalable' : 'invalid';
  }

  qiEnabled(): boolean {
    return this.qie;
  }

  scalableMode(): boolean {
    return this.xlate.ttm === TTM_SCALABLE;
  }

  /**
   * DmaRemapper: translate one piece of a bus-master transaction. With TE
   * clear DMA passes through untranslated; requests without PASID to the
   * interrupt range 0xFEEx_xxxx are interrupts, not DMA, and pass untranslated.
   */
  translate(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    this.cTranslations.value++;
    if (!this.te) {
      // A translation request is not a memory access: it comes through atsTranslate.
      if (txn.at === 'translation-request') return unsupported(out);
      out.pa = addr;
      out.length = Math.max(1, txn.addr + txn.length - addr);
      return true;
    }
    if (txn.pasid < 0 && addr >= IRQ_FIRST && addr < IRQ_END) {
      out.pa = addr;
      out.length = IRQ_END - addr;
      return true;
    }
    const reads = this.cWalkReads.value;
    const fetches = this.loader.fetches;
    const ok = this.xlate.translate(txn, addr, out);
    // A hit read no structure: two compares, nothing charged.
    if (reads !== this.cWalkReads.value || fetches !== this.loader.fetches) out.latencyNs += this.costSince(reads, fetches);
    if (ok) {
      if (txn.at === 'translation-request') return unsupported(out);
      if (this.ctx.tracer.wants('vtd.translate')) {
        this.ctx.tracer.trace('vtd.translate', this.name, { sid: txn.requesterId, pasid: txn.pasid, addr, pa: out.pa, length: out.length, write: txn.write });
      }
      return true;
    }
    return this.fault(out);
  }

  // --- AtsTranslationAgent: ATS and PRI messages from the root complex ----------

  /** A Translation Request from a device-TLB (ats.ts). */
  atsTranslate(req: AtsTranslationRequest): AtsTranslationCompletion {
    if (!this.caps.deviceTlb) return { status: 'UR', entries: [] };
    const reads = this.cWalkReads.value;
    const fetches = this.loader.fetches;
    const c = this.ats.translate(req);
    // Reported with a successful completion (a refused request fails the device's access anyway).
    if (c.status === 'SC' && (reads !== this.cWalkReads.value || fetches !== this.loader.fetches)) c.latencyNs = this.costSince(reads, fetches);
    return c;
  }

  /** Virtual ns of the walk reads and structure fetches since the counts given. */
  private costSince(reads: number, fetches: number): number {
    return (this.cWalkReads.value - reads) * this.walkReadNs + (this.loader.fetches - fetches) * this.tableFetchNs;
  }

  /** A Page Request Message (prq.ts); dropped by a unit without ECAP.PRS. */
  pageRequest(msg: PageRequestMessage): void {
    if (this.caps.pageRequests) this.prq.receive(msg);
  }

  /** An Invalidation Completion Message (devtlb.ts). */
  atsInvalidationCompleted(requesterId: number, itagVector: number, completionCount: number): void {
    this.devtlb.completed(requesterId, itagVector, completionCount);
  }

  /** A PRG Response downstream: from a page group response descriptor, or the unit's own (`auto`). */
  prgResponse(rid: number, pasid: number, prgIndex: number, code: PrgResponseCode, auto = false): void {
    const p = this.prgPoint;
    const a = p.check(p.armed ? { rid, pasid, prgIndex, code } : undefined);
    if (a !== undefined && (a.kind === 'fail' || a.kind === 'drop')) return;
    if (a?.kind === 'delay') this.ctx.scheduler.schedule(a.ns, () => this.sendPrg(rid, pasid, prgIndex, code, auto), `${this.name}.prg-response`);
    else this.sendPrg(rid, pasid, prgIndex, code, auto);
  }

  private sendPrg(rid: number, pasid: number, prgIndex: number, code: PrgResponseCode, auto: boolean): void {
    this.cPrgResponses.value++;
    if (this.ctx.tracer.wants('vtd.prg.response')) this.ctx.tracer.trace('vtd.prg.response', this.name, { rid, pasid, prgi: prgIndex, code, auto });
    this.downstream?.sendPrgResponse(rid, { pasid, prgIndex, code, privileged: false, exec: false });
  }

  /** Abort the request: record the fault unless a Fault Processing Disable bit applies to it (a qualified fault, §7.1.3). */
  private fault(out: TranslationAnswer): boolean {
    const f = this.xlate.fi;
    const fpd = this.xlate.fpd && isQualifiedFault(f.code);
    const name = faultName(f.code);
    this.cFaults.value++;
    let recorded = false;
    if (fpd) this.cSuppressed.value++;
    else recorded = this.faultRecorder.record(f);
    if (this.ctx.tracer.wants('vtd.fault')) {
      this.ctx.tracer.trace('vtd.fault', this.name, { sid: f.sid, pasid: f.pasid, addr: f.addr, reason: f.code, name, write: f.write, fpd, recorded });
    }
    out.status = 'UR';
    out.fault = name;
    return false;
  }

  private hookRegisters(): void {
    const rf = this.rf;
    rf.onWrite('GCMD', () => this.globalCommand());
    rf.onWrite('CCMD', () => contextCommand(rf, this.inv, this.qie));
    rf.onWrite('IOTLB', () => iotlbCommand(rf, this.inv, this.qie, this.caps));
    rf.onWrite('FSTS', (_reg, oldLo) => {
      this.faultRecorder.fstsWritten();
      // Clearing IQE (software repaired or replaced the descriptor) or ITE lets the unit fetch again from IQH.
      const stop = FSTS_IQE | FSTS_ITE;
      if ((oldLo & stop) !== 0 && (rf.get('FSTS') & stop) === 0) this.queue.process();
    });
    rf.onWrite('FECTL', () => this.faultEvent.controlWritten());
    rf.onWrite('IECTL', () => this.invEvent.controlWritten());
    rf.onWrite('PECTL', () => this.prqEvent.controlWritten());
    rf.onWrite('ICS', () => {
      if (rf.getField('ICS', 'IWC') === 0) this.invEvent.serviced();
    });
    rf.onWrite('PRS', () => {
      if ((rf.get('PRS') & (PRS_PPR | PRS_PRO)) === 0) this.prqEvent.serviced();
    });
    // No protected memory regions: PMEN.PRS simply follows EPM.
    rf.onWrite('PMEN', () => rf.setField('PMEN', 'PRS', rf.getField('PMEN', 'EPM')));
    rf.onWrite('IQT', () => this.queue.process());
    // IQA_REG: a new queue starts at offset 0 (IQH is reset).
    rf.onWrite('IQA', () => rf.set('IQH', 0, 0));
    for (let i = 0; i < this.caps.nfr; i++) rf.onWrite(`FRCD${i}_HI`, () => this.faultRecorder.frcdWritten());
  }

  /**
   * GCMD (§10.4.4): each command bit is compared with its status; TE and
   * QIE are levels, SRTP a one-shot that latches RTADDR. Advanced fault
   * logging, write-buffer flushing and interrupt remapping are not
   * supported (CAP.AFL = CAP.RWBF = ECAP.IR = 0): their commands are ignored.
   */
  private globalCommand(): void {
    const rf = this.rf;
    const cmd = rf.get('GCMD');
    let sts = rf.get('GSTS');
    if ((cmd & GCMD_SRTP) !== 0) {
      // RTA[63:12]; bits at or above HAW are not address bits.
      this.xlate.rootTable = (rf.getField('RTADDR', 'RTA') % 2 ** (this.caps.haw - 12)) * 4096;
      this.xlate.ttm = rf.getField('RTADDR', 'TTM');
      sts |= GSTS_RTPS;
      this.status('RTPS', true);
      if (this.ctx.tracer.wants('vtd.root')) this.ctx.tracer.trace('vtd.root', this.name, { addr: this.xlate.rootTable, mode: this.mode });
    }
    const te = (cmd & GCMD_TE) !== 0;
    if (te !== this.te) {
      this.te = te;
      sts = te ? sts | GSTS_TES : sts & ~GSTS_TES;
      if (!te) this.faultRecorder.resetIndex();
      this.status('TES', te);
    }
    const qie = (cmd & GCMD_QIE) !== 0;
    if (qie !== this.qie) {
      this.qie = qie;
      sts = qie ? sts | GSTS_QIES : sts & ~GSTS_QIES;
      if (!qie) {
        rf.set('IQH', 0, 0);
        this.queue.reset();
      }
      this.status('QIES', qie);
    }
    rf.set('GSTS', sts >>> 0);
    if (qie) this.queue.process();
  }

  private status(status: string, value: boolean): void {
    if (this.ctx.tracer.wants('vtd.gsts')) this.ctx.tracer.trace('vtd.gsts', this.name, { status, value });
  }

  /** An event interrupt: a DWORD write of the data register to the address registers, through `mem`. */
  private sendMsi(kind: EventKind, addr: number, data: number): void {
    const p = this.msiPoint;
    const a = p.check(p.armed ? { kind, addr, data } : undefined);
    if (a !== undefined && (a.kind === 'fail' || a.kind === 'drop')) {
      this.traceIrq(kind, addr, data, false);
      return;
    }
    const value = a?.kind === 'corrupt' ? (data ^ a.xorLo) >>> 0 : data;
    if (a?.kind === 'delay') {
      this.ctx.scheduler.schedule(a.ns, () => this.deliverMsi(kind, addr, value), `${this.name}.msi`);
      return;
    }
    this.deliverMsi(kind, addr, value);
  }

  private deliverMsi(kind: EventKind, addr: number, data: number): void {
    this.cIrq.value++;
    this.traceIrq(kind, addr, data, true);
    this.mem.write32(addr, data);
  }

  private traceIrq(kind: EventKind, addr: number, data: number, delivered: boolean): void {
    if (this.ctx.tracer.wants('vtd.irq')) this.ctx.tracer.trace('vtd.irq', this.name, { kind, addr, data, delivered });
  }
}

function unsupported(out: TranslationAnswer): false {
  out.status = 'UR';
  out.fault = 'UNSUPPORTED_REQUEST';
  return false;
}

/** DESIGN.md §3 defaults: a paging-structure or table entry read is one memory access. */
export const VTD_WALK_READ_NS = 100;
export const VTD_TABLE_FETCH_NS = 100;

/** A cost option: a non-negative finite number of ns, else the default. */
function costNs(v: number | undefined, dflt: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? v : dflt;
}

function clampInt(v: number, lo: number, hi: number): number {
  if (!Number.isFinite(v)) return lo;
  return Math.min(hi, Math.max(lo, Math.floor(v)));
}
