/**
 * DMA address translation (VT-d spec §3.4 legacy, §3.6 - §3.8 scalable
 * mode: first-stage, second-stage, nested, pass-through). The common case,
 * a request whose context, PASID entry and page are cached, is a few Map
 * lookups and allocates nothing. A miss fills the context-cache / PASID-cache
 * from memory and walks the page tables (iommu/pgtable walkers), caching the
 * result in the IOTLB tagged by domain ID and PASID.
 *
 * On a fault `translate` returns false with `fi` describing the fault and
 * `fpd` telling whether a Fault Processing Disable bit suppresses recording.
 */
import type { SimContext } from '../../src/sim/context.ts';
import type { Counter } from '../../src/trace/counters.ts';
import type { DmaTransaction } from '../../src/pci/transaction.ts';
import type { TranslationAnswer } from '../../src/pci/remapper.ts';
import * as pgt from '../pgtable/types.ts';
import { WalkResult, type PageTableWalker } from '../pgtable/types.ts';
import type { ContextCache, LegacyCtx, PasidCache, PasidCtx, SmCtx } from './caches.ts';
import * as reasons from './fault-reasons.ts';
import { FaultInfo } from './faults.ts';
import * as tlb from './iotlb.ts';
import type { Iotlb, IotlbBucket } from './iotlb.ts';
import * as pasidEntry from './pasid-entry.ts';
import * as regs from './regs.ts';
import type { VtdCaps } from './regs.ts';
import * as rootCtx from './root-context.ts';
import type { StructureLoader } from './structures.ts';
import { remPow2 } from '../pgtable/walk-common.ts';

// Module-local copies: when tsx loads the tree as CommonJS (from a CommonJS
// entry point) every use of an imported binding is a getter call, two through
// a re-export; these are read on every transaction.
const ACCESS_EXEC = pgt.ACCESS_EXEC;
const ACCESS_PRIV = pgt.ACCESS_PRIV;
const ACCESS_READ = pgt.ACCESS_READ;
const ACCESS_WRITE = pgt.ACCESS_WRITE;
const PERM_ALL = pgt.PERM_ALL;
const PERM_UR = pgt.PERM_UR;
const permits = pgt.permits;
const FaultKind = pgt.FaultKind;
const FAULT_NONE = pgt.FaultKind.None;
const FR = reasons.FR;
const KIND_FS = tlb.KIND_FS;
const KIND_NESTED = tlb.KIND_NESTED;
const KIND_SS = tlb.KIND_SS;
const PGTT_FIRST_STAGE = pasidEntry.PGTT_FIRST_STAGE;
const PGTT_NAMES = pasidEntry.PGTT_NAMES;
const PGTT_NESTED = pasidEntry.PGTT_NESTED;
const PGTT_PASSTHROUGH = pasidEntry.PGTT_PASSTHROUGH;
const pasidDirIndex = pasidEntry.pasidDirIndex;
const TTM_LEGACY = regs.TTM_LEGACY;
const TTM_SCALABLE = regs.TTM_SCALABLE;
const TT_DEVICE_TLB = rootCtx.TT_DEVICE_TLB;
const TT_PASSTHROUGH = rootCtx.TT_PASSTHROUGH;

/** The interrupt address range (§3.15): requests without PASID here are interrupts, not DMA. */
export const IRQ_FIRST = 0xfee0_0000;
export const IRQ_END = 0xfef0_0000;

export function inIrqRange(addr: number): boolean {
  return addr >= IRQ_FIRST && addr < IRQ_END;
}

export class Translator {
  /** Latched by GCMD.SRTP. */
  rootTable = 0;
  ttm = TTM_LEGACY;
  readonly fi = new FaultInfo();
  fpd = false;
  /**
   * The page behind the last successful translation (ATS completions report
   * it): input base, size, output base, PERM_* bits and first-stage G.
   */
  lastBase = 0;
  lastSize = 0;
  lastPa = 0;
  lastPerms = 0;
  lastGlobal = false;
  // The last context-cache and PASID-cache lookups (valid while the caches' generations are unchanged).
  private memoSid = -1;
  private memoCcGen = -1;
  private memoCtx: LegacyCtx | SmCtx | undefined = undefined;
  private memoPeSid = -1;
  private memoPasid = -1;
  private memoPcGen = -1;
  private memoPe: PasidCtx | undefined = undefined;
  private readonly wr = new WalkResult();
  private readonly wr2 = new WalkResult();
  private readonly hawLimit: number;
  /** 2^(ECAP.PSS + 1): PASIDs at or above it are beyond what the unit supports. */
  private readonly pasidLimit: number;
  private readonly cWalks: Counter;
  private readonly cWalkReads: Counter;
  private readonly cCtxMiss: Counter;
  private readonly cPasidMiss: Counter;

  constructor(
    caps: VtdCaps,
    private readonly ctx: SimContext,
    private readonly name: string,
    private readonly loader: StructureLoader,
    private readonly cc: ContextCache,
    private readonly pc: PasidCache,
    private readonly iotlb: Iotlb,
  ) {
    this.hawLimit = 2 ** caps.haw;
    this.pasidLimit = 2 ** caps.pasidBits;
    const c = ctx.counters;
    this.cWalks = c.counter(`${name}.walks`);
    this.cWalkReads = c.counter(`${name}.walk.reads`);
    this.cCtxMiss = c.counter(`${name}.context_cache.miss`);
    this.cPasidMiss = c.counter(`${name}.pasid_cache.miss`);
  }

  translate(txn: DmaTransaction, addr: number, out: TranslationAnswer): boolean {
    const sid = txn.requesterId & 0xffff;
    if (this.ttm === TTM_SCALABLE) return this.scalable(txn, sid, addr, out);
    if (this.ttm === TTM_LEGACY) return this.legacy(txn, sid, addr, out);
    return this.fail(txn, addr, FR.RTADDR_INVALID, false);
  }

  private legacy(txn: DmaTransaction, sid: number, addr: number, out: TranslationAnswer): boolean {
    if (txn.pasid >= 0) return this.fail(txn, addr, FR.LEGACY_PASID, false);
    let c = this.cc.get(sid);
    if (c === undefined || c.scalable) {
      this.cCtxMiss.value++;
      const loaded = this.loader.loadLegacy(sid, this.rootTable);
      if (loaded === null) return this.fail(txn, addr, this.loader.fault, this.loader.fpd);
      this.cc.put((c = loaded));
    }
    const ctx = c as LegacyCtx;
    // Translation requests and translated requests need TT = 01 (device-TLB); translated ones pass as they are.
    if (txn.at !== 'untranslated') {
      if (ctx.tt !== TT_DEVICE_TLB) return this.fail(txn, addr, FR.CTX_TT, ctx.fpd);
      if (txn.at === 'translated') return this.identity(addr, txn, out);
    }
    if (ctx.tt === TT_PASSTHROUGH) {
      if (addr >= this.hawLimit) return this.fail(txn, addr, FR.ADDR_MGAW, ctx.fpd);
      return this.identity(addr, txn, out);
    }
    const access = txn.write ? ACCESS_WRITE : ACCESS_READ;
    const b = (ctx.bucket ??= this.iotlb.bucket(ctx.did, -1));
    if (this.hit(b, addr, access, out)) return true;
    const w = this.wr;
    this.walked(ctx.walker!, addr, access, w, sid, -1, ctx.did, 'second-stage');
    if (w.fault !== FAULT_NONE) return this.fail(txn, addr, this.ssFault(w, access, true, ctx.levels), ctx.fpd);
    if (inIrqRange(w.outputAddr)) return this.fail(txn, addr, FR.IRQ_ADDR, ctx.fpd);
    return this.fill(b, addr, w.pageSize, w.outputAddr, w.perms, false, KIND_SS, out);
  }

  private scalable(txn: DmaTransaction, sid: number, addr: number, out: TranslationAnswer): boolean {
    let c = sid === this.memoSid && this.cc.gen === this.memoCcGen ? this.memoCtx : this.ctxLookup(sid);
    if (c === undefined || !c.scalable) {
      this.cCtxMiss.value++;
      const loaded = this.loader.loadScalable(sid, this.rootTable);
      if (loaded === null) return this.fail(txn, addr, this.loader.fault, this.loader.fpd);
      this.cc.put((c = loaded));
    }
    const ctx = c as SmCtx;
    // Translation requests and translated requests need DTE; translated ones pass as they are.
    if (txn.at !== 'untranslated') {
      if (!ctx.dte) return this.fail(txn, addr, FR.SM_DTE, ctx.fpd);
      if (txn.at === 'translated') return this.identity(addr, txn, out);
    }
    const hasPasid = txn.pasid >= 0;
    let pasid: number;
    let priv: boolean;
    let exec = false;
    if (hasPasid) {
      if (!ctx.paside) return this.fail(txn, addr, FR.SM_PASIDE, ctx.fpd);
      pasid = txn.pasid;
      if (pasidDirIndex(pasid) >= ctx.dirEntries || pasid >= this.pasidLimit) return this.fail(txn, addr, FR.SM_PASID_LARGE, ctx.fpd);
      priv = txn.privileged;
      exec = txn.exec;
    } else {
      pasid = ctx.ridPasid;
      if (pasidDirIndex(pasid) >= ctx.dirEntries) return this.fail(txn, addr, FR.SM_RID_PASID, ctx.fpd);
      priv = ctx.ridPriv;
    }
    let pe = sid === this.memoPeSid && pasid === this.memoPasid && this.pc.gen === this.memoPcGen ? this.memoPe : this.pasidLookup(sid, pasid);
    if (pe === undefined) {
      this.cPasidMiss.value++;
      const loaded = this.loader.loadPasid(ctx, pasid);
      if (loaded === null) return this.fail(txn, addr, this.loader.fault, this.loader.fpd);
      this.pc.put((pe = loaded));
    }
    const fpd = ctx.fpd || pe.fpd;
    const pgtt = pe.pgtt;
    if (pgtt === PGTT_PASSTHROUGH) {
      if (addr >= this.hawLimit) return this.fail(txn, addr, FR.SM_ADDR_AW, fpd);
      if (inIrqRange(addr)) return this.fail(txn, addr, FR.SM_IRQ_ADDR, fpd);
      return this.identity(addr, txn, out);
    }
    const firstStage = pgtt === PGTT_FIRST_STAGE || pgtt === PGTT_NESTED;
    if (firstStage && priv && !pe.sre) return this.fail(txn, addr, FR.SM_SRE, fpd);
    if (firstStage && exec && !pe.ere) return this.fail(txn, addr, FR.SM_ERE, fpd);
    const access = (txn.write && !exec ? ACCESS_WRITE : 0) | (exec ? ACCESS_EXEC : 0) | (priv && firstStage ? ACCESS_PRIV : 0);
    const b = (pe.bucket ??= this.iotlb.bucket(pe.did, pasid));
    if (this.hit(b, addr, access, out)) return true;
    const code = this.walkScalable(pe, sid, addr, access);
    if (code !== 0) return this.fail(txn, addr, code, fpd);
    const w = this.wr;
    if (inIrqRange(w.outputAddr)) return this.fail(txn, addr, FR.SM_IRQ_ADDR, fpd);
    const kind = pgtt === PGTT_FIRST_STAGE ? KIND_FS : pgtt === PGTT_NESTED ? KIND_NESTED : KIND_SS;
    return this.fill(b, addr, w.pageSize, w.outputAddr, w.perms, firstStage && !w.nonGlobal, kind, out);
  }

  /** A context-cache lookup, remembered until the cache next changes (the same answer, without the Map lookup). */
  private ctxLookup(sid: number): LegacyCtx | SmCtx | undefined {
    const c = this.cc.get(sid);
    this.memoSid = sid;
    this.memoCcGen = this.cc.gen;
    this.memoCtx = c;
    return c;
  }

  /** A PASID-cache lookup, remembered the same way. */
  private pasidLookup(sid: number, pasid: number): PasidCtx | undefined {
    const pe = this.pc.get(sid, pasid);
    this.memoPeSid = sid;
    this.memoPasid = pasid;
    this.memoPcGen = this.pc.gen;
    this.memoPe = pe;
    return pe;
  }

  /**
   * The context entry of `sid` in the current mode, through the context-cache
   * (page requests check it); null with `fi.code` set when it cannot be loaded.
   */
  context(sid: number): LegacyCtx | SmCtx | null {
    const scalable = this.ttm === TTM_SCALABLE;
    let c = this.cc.get(sid);
    if (c === undefined || c.scalable !== scalable) {
      this.cCtxMiss.value++;
      const loaded = scalable ? this.loader.loadScalable(sid, this.rootTable) : this.loader.loadLegacy(sid, this.rootTable);
      if (loaded === null) {
        this.fi.code = this.loader.fault;
        this.fpd = this.loader.fpd;
        return null;
      }
      this.cc.put((c = loaded));
    }
    return c;
  }

  /** Walk the tables of a PASID entry; 0 with `wr` holding the (combined) translation, or a fault reason. */
  private walkScalable(pe: PasidCtx, sid: number, addr: number, access: number): number {
    const w = this.wr;
    if (pe.pgtt !== PGTT_FIRST_STAGE && pe.pgtt !== PGTT_NESTED) {
      this.walked(pe.ss!, addr, access, w, sid, pe.pasid, pe.did, 'second-stage');
      return w.fault === FAULT_NONE ? 0 : this.ssFault(w, access, false, pe.ssLevels);
    }
    this.walked(pe.fs!, addr, access, w, sid, pe.pasid, pe.did, PGTT_NAMES[pe.pgtt]!);
    if (w.fault !== FAULT_NONE) return this.fsFault(pe, addr, access, w);
    if (pe.pgtt !== PGTT_NESTED) return 0;
    // Nested: the first-stage output is a guest-physical address; translate it through the second stage.
    const s2 = this.wr2;
    const gpa = w.outputAddr;
    this.walked(pe.ss!, gpa, access & ~ACCESS_PRIV, s2, sid, pe.pasid, pe.did, 'nested-second-stage');
    if (s2.fault !== FAULT_NONE) {
      return s2.fault === FaultKind.InputRange ? FR.NESTED_OUT_AW : this.ssFault(s2, access, false, pe.ssLevels);
    }
    const size = Math.min(w.pageSize, s2.pageSize);
    w.outputAddr = s2.outputAddr;
    w.pageSize = size;
    w.perms &= s2.perms;
    return 0;
  }

  private walked(walker: PageTableWalker, addr: number, access: number, w: WalkResult, sid: number, pasid: number, did: number, stage: string): void {
    walker.walk(addr, access, w);
    this.cWalks.value++;
    this.cWalkReads.value += w.memReads;
    if (this.ctx.tracer.wants('vtd.walk')) {
      this.ctx.tracer.trace('vtd.walk', this.name, {
        sid, pasid, did, addr, stage, ok: w.fault === FAULT_NONE, pa: w.outputAddr, pageSize: w.pageSize, reads: w.memReads,
      });
    }
  }

  /** Second-stage walk failure → fault reason (legacy §7.1.3 LSL/LGN, scalable SSS/SGN). */
  private ssFault(w: WalkResult, access: number, legacy: boolean, levels: number): number {
    const write = (access & ACCESS_WRITE) !== 0;
    const exec = (access & ACCESS_EXEC) !== 0;
    switch (w.fault) {
      case FaultKind.InputRange:
        return legacy ? FR.ADDR_MGAW : FR.SM_ADDR_AW;
      case FaultKind.ExternalAbort:
        return legacy ? FR.PTE_FETCH : w.faultLevel === levels ? FR.SS_ROOT : FR.SS_FETCH;
      case FaultKind.ReservedBit:
        return legacy ? FR.PTE_RSVD : FR.SS_RSVD;
      case FaultKind.Translation:
        if (!legacy) return FR.SS_NP;
        return write ? FR.WRITE : FR.READ;
      default:
        if (legacy) return write ? FR.WRITE : FR.READ;
        return exec ? FR.EXEC : write ? FR.SM_WRITE : FR.SM_READ;
    }
  }

  /** First-stage (or nested table-walk) failure → SFS/SGN fault reason. */
  private fsFault(pe: PasidCtx, addr: number, access: number, w: WalkResult): number {
    switch (w.fault) {
      case FaultKind.InputRange:
        return FR.FS_CANONICAL;
      case FaultKind.ExternalAbort:
        return w.faultLevel === pe.fsLevels ? FR.FS_ROOT_FETCH : FR.FS_FETCH;
      case FaultKind.Translation:
        return FR.FS_NP;
      case FaultKind.ReservedBit:
        return FR.FS_RSVD;
      case FaultKind.Stage2:
        return this.nestedTableFault(pe, w);
      default:
        return this.fsPermissionFault(pe, addr, access);
    }
  }

  /** Which right failed: re-walk with a probe walker that sets no A/D bits and look at the rights. */
  private fsPermissionFault(pe: PasidCtx, addr: number, access: number): number {
    const probe = (pe.fsProbe ??= this.loader.fsWalker(pe, false));
    const p = this.wr2;
    const seen = probe.walk(addr, ACCESS_READ | ACCESS_PRIV, p) ? p.perms : 0;
    if ((access & ACCESS_PRIV) === 0 && (seen & PERM_UR) === 0) return FR.FS_USER;
    if ((access & ACCESS_EXEC) !== 0) return FR.EXEC;
    return (access & ACCESS_WRITE) !== 0 ? FR.SM_WRITE : FR.SM_READ;
  }

  /** Nested: the second stage refused a first-stage table access (SFS.5-8 or the SSS reasons). */
  private nestedTableFault(pe: PasidCtx, w: WalkResult): number {
    switch (w.s2FaultKind) {
      case FaultKind.InputRange:
        return FR.NESTED_FS_AW;
      case FaultKind.ExternalAbort:
        return FR.SS_FETCH;
      case FaultKind.ReservedBit:
        return FR.SS_RSVD;
      case FaultKind.Permission: {
        const probe = (pe.ssProbe ??= this.loader.ssWalker(pe, false));
        if (probe.walk(w.s2FaultAddr, ACCESS_READ, this.wr2)) return FR.NESTED_FS_WRITE;
        return w.faultLevel === pe.fsLevels ? FR.NESTED_FS_ROOT_READ : FR.NESTED_FS_READ;
      }
      default:
        return FR.SS_NP;
    }
  }

  /** An IOTLB hit that grants `access`; fills `out`. */
  private hit(b: IotlbBucket, addr: number, access: number, out: TranslationAnswer): boolean {
    const e = this.iotlb.lookup(b, addr);
    if (e === undefined || !permits(e.perms, access)) return false;
    const pa = e.pa + (addr - e.iova);
    let length = e.iova + e.size - addr;
    if (e.irqOverlap) {
      if (inIrqRange(pa)) return false;
      if (pa < IRQ_FIRST && pa + length > IRQ_FIRST) length = IRQ_FIRST - pa;
    }
    out.pa = pa;
    out.length = length;
    this.setLast(e.iova, e.size, e.pa, e.perms, e.global);
    return true;
  }

  private fill(b: IotlbBucket, addr: number, size: number, pa: number, perms: number, global: boolean, kind: number, out: TranslationAnswer): boolean {
    const off = remPow2(addr, size);
    const paBase = pa - off;
    const irq = paBase < IRQ_END && paBase + size > IRQ_FIRST;
    this.iotlb.insert(b, addr - off, size, paBase, perms, global, kind, irq);
    let length = size - off;
    if (irq && pa < IRQ_FIRST && pa + length > IRQ_FIRST) length = IRQ_FIRST - pa;
    out.pa = pa;
    out.length = length;
    this.setLast(addr - off, size, paBase, perms, global);
    return true;
  }

  private setLast(base: number, size: number, pa: number, perms: number, global: boolean): void {
    this.lastBase = base;
    this.lastSize = size;
    this.lastPa = pa;
    this.lastPerms = perms;
    this.lastGlobal = global;
  }

  private identity(addr: number, txn: DmaTransaction, out: TranslationAnswer): boolean {
    out.pa = addr;
    out.length = Math.max(1, txn.addr + txn.length - addr);
    if (addr < IRQ_FIRST && addr + out.length > IRQ_FIRST) out.length = IRQ_FIRST - addr;
    const base = addr - remPow2(addr, 4096);
    this.setLast(base, 4096, base, PERM_ALL, false);
    return true;
  }

  private fail(txn: DmaTransaction, addr: number, code: number, fpd: boolean): boolean {
    const f = this.fi;
    const hasPasid = txn.pasid >= 0;
    f.code = code;
    f.sid = txn.requesterId & 0xffff;
    f.pasid = hasPasid ? txn.pasid : -1;
    f.addr = addr;
    f.write = txn.write;
    f.priv = hasPasid && txn.privileged;
    f.exec = hasPasid && txn.exec;
    f.at = txn.at;
    f.pageReq = false;
    this.fpd = fpd;
    return false;
  }
}
