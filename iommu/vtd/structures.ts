/**
 * Fetching and checking the translation structures above the page tables
 * (VT-d spec §3.4 legacy and §3.4.3 / §3.6 scalable-mode table walks):
 * root entry → (legacy) context entry, or root entry → scalable-mode
 * context entry → PASID directory entry → PASID table entry. Each fetch is
 * checked for errors, presence, reserved bits (§9.x layouts plus pointer
 * bits at or above HAW and fields of features the unit lacks) and invalid
 * programming, in that order, and yields the decoded cache entry or a fault
 * reason. Nothing here touches a cache; the translator fills them.
 */
import { VTD_INJECTION_POINTS } from './points.ts';
import type { InjectionAction, InjectionPoint } from '../../src/fault/injector.ts';
import { formatLayout, hasReservedBits, readField as rd } from '../../src/hw/layout.ts';
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import type { WalkMem } from '../pgtable/walk-mem.ts';
import type { SimContext } from '../../src/sim/context.ts';
import { Ia32eWalker, NestedTableTranslator, VtdSsWalker } from '../pgtable/index.ts';
import { LegacyCtx, PasidCtx, SmCtx } from './caches.ts';
import { FR } from './fault-reasons.ts';
import {
  PASID_DIR_ENTRY, PASID_ENTRY, PGTT_FIRST_STAGE, PGTT_NESTED, PGTT_PASSTHROUGH, PGTT_SECOND_STAGE, pasidDirEntries, pasidDirIndex, pasidTableIndex,
} from './pasid-entry.ts';
import { levelsForAw, type VtdCaps } from './regs.ts';
import {
  CONTEXT_ENTRY, ROOT_ENTRY, SM_CONTEXT_ENTRY, SM_CONTEXT_TABLE_ENTRIES, SM_ROOT_ENTRY, TT_DEVICE_TLB, TT_PASSTHROUGH, ptrAboveHaw,
  sidBus, sidDevfn, tablePtr,
} from './root-context.ts';

export class StructureLoader {
  /** Fault reason of the last failed load. */
  fault = 0;
  /** FPD of the entries read before the failure, present or not (qualified faults only: fault-reasons.ts). */
  fpd = false;
  /** Entries read from memory so far (root, context, PASID directory, PASID table): what `tableFetchNs` prices. */
  fetches = 0;
  private readonly root = new Uint32Array(4);
  private readonly ctxw = new Uint32Array(8);
  private readonly dir = new Uint32Array(2);
  private readonly pe = new Uint32Array(16);
  private readonly ctxPoint: InjectionPoint;
  private readonly pasidPoint: InjectionPoint;

  constructor(
    private readonly mem: PhysMem,
    private readonly walkMem: WalkMem,
    private readonly caps: VtdCaps,
    private readonly ctx: SimContext,
    private readonly name: string,
  ) {
    this.ctxPoint = ctx.faults.define(VTD_INJECTION_POINTS)['vtd.context_fetch'];
    this.pasidPoint = ctx.faults.define(VTD_INJECTION_POINTS)['vtd.pasid_fetch'];
  }

  /** Legacy mode: root entry of the bus, context entry of the devfn (§9.1, §9.3). */
  loadLegacy(sid: number, rootTable: number): LegacyCtx | null {
    this.fpd = false;
    const haw = this.caps.haw;
    const r = this.root;
    if (!this.read(rootTable + sidBus(sid) * 16, r, 4)) return this.failed(FR.ROOT_FETCH);
    if (rd(ROOT_ENTRY, r, 'P') === 0) return this.failed(FR.ROOT_NP);
    if (hasReservedBits(ROOT_ENTRY, r) || ptrAboveHaw(ROOT_ENTRY, r, 'CTP', haw)) return this.failed(FR.ROOT_RSVD);
    const c = this.ctxw;
    const inj = this.ctxPoint.check(this.ctxPoint.armed ? { sid } : undefined);
    if (failing(inj) || !this.read(tablePtr(ROOT_ENTRY, r, 'CTP') + sidDevfn(sid) * 16, c, 4)) return this.failed(FR.CTX_FETCH);
    corrupt(inj, c);
    // §9.3: FPD is evaluated whether or not P is set (a non-present entry can silence its faults).
    this.fpd = rd(CONTEXT_ENTRY, c, 'FPD') !== 0;
    if (rd(CONTEXT_ENTRY, c, 'P') === 0) return this.failed(FR.CTX_NP);
    if (hasReservedBits(CONTEXT_ENTRY, c) || ptrAboveHaw(CONTEXT_ENTRY, c, 'SLPTPTR', haw)) return this.failed(FR.CTX_RSVD);
    const tt = rd(CONTEXT_ENTRY, c, 'TT');
    const levels = levelsForAw(this.caps, rd(CONTEXT_ENTRY, c, 'AW'));
    const ttOk = tt === 0 || tt === TT_PASSTHROUGH || (tt === TT_DEVICE_TLB && this.caps.deviceTlb);
    if (!ttOk || (tt !== TT_PASSTHROUGH && levels === 0)) return this.failed(FR.CTX_INVALID);
    const e = new LegacyCtx();
    e.sid = sid;
    e.tt = tt;
    e.fpd = rd(CONTEXT_ENTRY, c, 'FPD') !== 0;
    e.did = rd(CONTEXT_ENTRY, c, 'DID');
    e.levels = levels;
    e.slptptr = tablePtr(CONTEXT_ENTRY, c, 'SLPTPTR');
    if (tt !== TT_PASSTHROUGH) {
      e.walker = new VtdSsWalker(this.walkMem.withRequester(sid, -1), { levels: levels as 3 | 4 | 5, root: e.slptptr, haw, ad: false, snoopControl: this.caps.snoopControl });
    }
    this.trace('context', sid, -1, formatLayout(CONTEXT_ENTRY, c));
    return e;
  }

  /** Scalable mode: lower/upper half of the root entry, 256-bit context entry (§9.2, §9.4). */
  loadScalable(sid: number, rootTable: number): SmCtx | null {
    this.fpd = false;
    const haw = this.caps.haw;
    const r = this.root;
    const devfn = sidDevfn(sid);
    const upper = devfn >= SM_CONTEXT_TABLE_ENTRIES;
    if (!this.read(rootTable + sidBus(sid) * 16, r, 4)) return this.failed(FR.SM_ROOT_FETCH);
    if (rd(SM_ROOT_ENTRY, r, upper ? 'UP' : 'LP') === 0) return this.failed(FR.SM_ROOT_NP);
    const ctp = upper ? 'UCTP' : 'LCTP';
    if (hasReservedBits(SM_ROOT_ENTRY, r) || ptrAboveHaw(SM_ROOT_ENTRY, r, ctp, haw)) return this.failed(FR.SM_ROOT_RSVD);
    const c = this.ctxw;
    const inj = this.ctxPoint.check(this.ctxPoint.armed ? { sid } : undefined);
    const at = tablePtr(SM_ROOT_ENTRY, r, ctp) + (devfn % SM_CONTEXT_TABLE_ENTRIES) * 32;
    if (failing(inj) || !this.read(at, c, 8)) return this.failed(FR.SM_CTX_FETCH);
    corrupt(inj, c);
    const x = SM_CONTEXT_ENTRY;
    // §9.4: FPD is evaluated whether or not P is set.
    this.fpd = rd(x, c, 'FPD') !== 0;
    if (rd(x, c, 'P') === 0) return this.failed(FR.SM_CTX_NP);
    const dte = rd(x, c, 'DTE') !== 0;
    const pre = rd(x, c, 'PRE') !== 0;
    const rsv = hasReservedBits(x, c) || ptrAboveHaw(x, c, 'PASIDDIRPTR', haw);
    if (rsv || (dte && !this.caps.deviceTlb) || (pre && !this.caps.pageRequests)) return this.failed(FR.SM_CTX_RSVD);
    const e = new SmCtx();
    e.sid = sid;
    e.fpd = rd(x, c, 'FPD') !== 0;
    e.dte = dte;
    e.paside = rd(x, c, 'PASIDE') !== 0;
    e.pre = pre;
    // A directory of 2^(PDTS+7) entries, but never more than the PASID width needs.
    e.dirEntries = Math.min(2 ** (rd(x, c, 'PDTS') + 7), pasidDirEntries(this.caps.pasidBits));
    e.dirPtr = tablePtr(x, c, 'PASIDDIRPTR');
    e.ridPasid = rd(x, c, 'RID_PASID');
    e.ridPriv = rd(x, c, 'RID_PRIV') !== 0;
    this.trace('context', sid, -1, formatLayout(x, c));
    return e;
  }

  /** PASID directory entry and PASID table entry of `pasid` (§9.5, §9.6). */
  loadPasid(ctx: SmCtx, pasid: number): PasidCtx | null {
    this.fpd = ctx.fpd;
    const caps = this.caps;
    const d = this.dir;
    const p = this.pe;
    if (!this.read(ctx.dirPtr + pasidDirIndex(pasid) * 8, d, 2)) return this.failed(FR.SM_PDIR_FETCH);
    // §9.5 / §9.6: FPD is evaluated whether or not P is set (QEMU vtd_ce_get_pasid_fpd reads it first too).
    const dirFpd = rd(PASID_DIR_ENTRY, d, 'FPD') !== 0;
    this.fpd ||= dirFpd;
    if (rd(PASID_DIR_ENTRY, d, 'P') === 0) return this.failed(FR.SM_PDIR_NP);
    if (hasReservedBits(PASID_DIR_ENTRY, d) || ptrAboveHaw(PASID_DIR_ENTRY, d, 'SMPTBLPTR', caps.haw)) return this.failed(FR.SM_PDIR_RSVD);
    const inj = this.pasidPoint.check(this.pasidPoint.armed ? { sid: ctx.sid, pasid } : undefined);
    if (failing(inj) || !this.read(tablePtr(PASID_DIR_ENTRY, d, 'SMPTBLPTR') + pasidTableIndex(pasid) * 64, p, 16)) return this.failed(FR.SM_PE_FETCH);
    corrupt(inj, p);
    const x = PASID_ENTRY;
    // A non-present PASID entry with FPD set (what Linux leaves behind at SVA mm release,
    // intel_pasid_clear_entry with fault_ignore): its faults are not recorded.
    this.fpd ||= rd(x, p, 'FPD') !== 0;
    if (rd(x, p, 'P') === 0) return this.failed(FR.SM_PE_NP);
    const pgtt = rd(x, p, 'PGTT');
    const usesSs = pgtt === PGTT_SECOND_STAGE || pgtt === PGTT_NESTED;
    const usesFs = pgtt === PGTT_FIRST_STAGE || pgtt === PGTT_NESTED;
    const rsv = hasReservedBits(x, p) || (usesSs && ptrAboveHaw(x, p, 'SLPTPTR', caps.haw))
      || (pgtt === PGTT_FIRST_STAGE && ptrAboveHaw(x, p, 'FSPTPTR', caps.haw));
    if (rsv) return this.failed(FR.SM_PE_RSVD);
    const ssLevels = levelsForAw(caps, rd(x, p, 'AW'));
    const flpm = rd(x, p, 'FLPM');
    const pgttOk = pgtt >= PGTT_FIRST_STAGE && pgtt <= PGTT_PASSTHROUGH;
    if (!pgttOk || (usesSs && ssLevels === 0) || (usesFs && (flpm > 1 || (flpm === 1 && !caps.fiveLevel)))) {
      return this.failed(FR.SM_PE_INVALID);
    }
    const e = new PasidCtx();
    e.sid = ctx.sid;
    e.pasid = pasid;
    e.pgtt = pgtt;
    e.fpd = dirFpd || rd(x, p, 'FPD') !== 0;
    e.did = rd(x, p, 'DID');
    e.sre = rd(x, p, 'SRE') !== 0;
    e.ere = rd(x, p, 'ERE') !== 0;
    e.wpe = rd(x, p, 'WPE') !== 0;
    e.eafe = rd(x, p, 'EAFE') !== 0;
    e.slee = rd(x, p, 'SLEE') !== 0;
    e.slade = rd(x, p, 'SLADE') !== 0;
    e.ssLevels = ssLevels;
    e.slptptr = tablePtr(x, p, 'SLPTPTR');
    e.fsLevels = flpm === 1 ? 5 : 4;
    e.fsptptr = tablePtr(x, p, 'FSPTPTR');
    if (usesSs) e.ss = this.ssWalker(e, true);
    if (usesFs) e.fs = this.fsWalker(e, true);
    this.trace('pasid', ctx.sid, pasid, formatLayout(x, p));
    return e;
  }

  /** A second-stage walker for a PASID entry (`ad` false: a probe that never writes). */
  ssWalker(e: PasidCtx, ad: boolean): VtdSsWalker {
    return new VtdSsWalker(this.walkMem.withRequester(e.sid, e.pasid), {
      levels: e.ssLevels as 3 | 4 | 5, root: e.slptptr, haw: this.caps.haw, ad: ad && e.slade, executeEnable: e.slee, snoopControl: true,
    });
  }

  /** A first-stage walker for a PASID entry; nested entries translate table addresses through `e.ss`. */
  fsWalker(e: PasidCtx, ad: boolean): Ia32eWalker {
    const nested = e.pgtt === PGTT_NESTED && e.ss !== null;
    return new Ia32eWalker(this.walkMem.withRequester(e.sid, e.pasid), {
      levels: e.fsLevels as 4 | 5,
      root: e.fsptptr,
      // Nested outputs are GPAs: beyond the second-stage AW they fault in the second stage (SGN.5).
      maxPhysBits: this.caps.haw,
      nxe: true, // XD is always the execute-disable bit in VT-d first-stage entries
      wp: e.wpe,
      ad,
      eafe: ad && e.eafe,
      page1G: true,
      ...(nested ? { tableAddrTranslator: new NestedTableTranslator(e.ss!) } : {}),
    });
  }

  private read(addr: number, into: Uint32Array, n: number): boolean {
    this.fetches++;
    for (let i = 0; i < n; i++) {
      const v = this.mem.read32Checked(addr + 4 * i);
      if (v < 0) return false;
      into[i] = v;
    }
    return true;
  }

  private failed(code: number): null {
    this.fault = code;
    return null;
  }

  private trace(kind: 'context' | 'pasid', sid: number, pasid: number, entry: string): void {
    if (this.ctx.tracer.wants('vtd.entry.load')) this.ctx.tracer.trace('vtd.entry.load', this.name, { kind, sid, pasid, entry });
  }
}

function failing(a: InjectionAction | undefined): boolean {
  return a !== undefined && (a.kind === 'fail' || a.kind === 'drop');
}

function corrupt(a: InjectionAction | undefined, words: Uint32Array): void {
  if (a?.kind !== 'corrupt') return;
  words[0] = (words[0]! ^ a.xorLo) >>> 0;
  words[1] = (words[1]! ^ (a.xorHi ?? 0)) >>> 0;
}
