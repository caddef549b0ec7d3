/**
 * IA-32e (4-level / 5-level) walk for the VT-d first stage and x86 process
 * page tables (Intel SDM Vol. 3A §4.5 translation, §4.6 access rights, §4.8
 * accessed and dirty flags). Accessed flags are set in every entry used and
 * the dirty flag in the leaf on a write, written back only when the whole
 * walk succeeds (no flag is left set by a faulting access).
 */
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import { ACCESS_EXEC, ACCESS_WRITE, FaultKind, PERM_R, PERM_UR, PERM_UW, PERM_UX, PERM_W, PERM_X, permits, type PageTableWalker, type TableAddrTranslator, type WalkResult } from './types.ts';
import { E_A, E_D, E_EA, E_G, E_P, E_PAT_LARGE, E_PCD, E_PS, E_PWT, E_RW, E_US, EH_XD, ia32eAddr, ia32eReserved, ia32eShift, type ReservedMask } from './ia32e-layout.ts';
import { DescFetcher, POW2, inRange, remPow2, tableIndex } from './walk-common.ts';

export interface Ia32eWalkConfig {
  levels: 4 | 5;
  /** CR3 / PASID-entry FSPTPTR: the top table's address (bits 11:0 ignored). */
  root: number;
  /** MAXPHYADDR (VT-d: HAW); entry address bits at or above it are reserved. */
  maxPhysBits: number;
  /** IA32_EFER.NXE: XD is enforced; otherwise bit 63 is reserved. */
  nxe: boolean;
  /** CR0.WP / PASID-entry WPE: supervisor writes honour R/W. */
  wp: boolean;
  /** CR4.SMEP: no supervisor instruction fetch from user pages. */
  smep?: boolean;
  /** CR4.SMAP (with EFLAGS.AC = 0): no supervisor data access to user pages. */
  smap?: boolean;
  /** Set A (and D on writes). Default true; VT-d first stage always does. */
  ad?: boolean;
  /** VT-d EAFE: also set the extended-accessed bit 10 with A. */
  eafe?: boolean;
  /** 1-GByte pages supported (CPUID Page1GB / VT-d FS1GP). Default true. */
  page1G?: boolean;
  /** Nested: translate table addresses (GPA → HPA) through second stage. */
  tableAddrTranslator?: TableAddrTranslator;
}

const MAX_LEVELS = 5;

export class Ia32eWalker implements PageTableWalker {
  readonly format: string;
  private readonly fetcher: DescFetcher;
  private cfg!: Ia32eWalkConfig;
  private root = 0;
  /** Reserved masks indexed by level*2 + ps. */
  private rsv: ReservedMask[] = [];
  /* Pending A/D write-backs, one slot per level; no allocation per walk. */
  private readonly updAddr = new Float64Array(MAX_LEVELS + 1);
  private readonly updPa = new Float64Array(MAX_LEVELS + 1);
  private readonly updLo = new Uint32Array(MAX_LEVELS + 1);
  private readonly updOn = new Uint8Array(MAX_LEVELS + 1);

  constructor(mem: PhysMem, cfg: Ia32eWalkConfig) {
    this.fetcher = new DescFetcher(mem, undefined);
    this.format = `ia32e-${cfg.levels}level`;
    this.configure(cfg);
  }

  configure(cfg: Ia32eWalkConfig): void {
    this.cfg = cfg;
    this.root = cfg.root - (cfg.root % 4096);
    this.fetcher.translator = cfg.tableAddrTranslator;
    const maxPhys = Math.min(52, Math.max(32, cfg.maxPhysBits));
    this.rsv = [];
    for (let level = 0; level <= MAX_LEVELS; level++) {
      this.rsv.push(ia32eReserved(level, false, maxPhys, cfg.nxe, cfg.page1G !== false));
      this.rsv.push(ia32eReserved(level, true, maxPhys, cfg.nxe, cfg.page1G !== false));
    }
  }

  walk(ia: number, access: number, r: WalkResult): boolean {
    r.reset();
    const cfg = this.cfg;
    const levels = cfg.levels === 5 ? 5 : 4;
    // Lower-half canonical addresses only: numbers cannot hold the sign-extended upper half.
    if (!inRange(ia, levels === 5 ? 53 : 47)) return r.failed(FaultKind.InputRange, levels);
    const ad = cfg.ad !== false;
    const f = this.fetcher;
    let table = this.root;
    let user = true;
    let writable = true;
    let xd = false;
    this.updOn.fill(0);

    for (let level = levels; level >= 1; level--) {
      const shift = ia32eShift(level);
      const at = table + tableIndex(ia, shift, 512) * 8;
      if (!f.fetch(at, level, r)) return false;
      const lo = f.lo;
      const hi = f.hi;
      if ((lo & E_P) === 0) return r.failed(FaultKind.Translation, level);
      const ps = (level === 2 || level === 3) && (lo & E_PS) !== 0;
      const rsv = this.rsv[level * 2 + (ps ? 1 : 0)]!;
      if ((lo & rsv.lo) !== 0 || (hi & rsv.hi) !== 0) {
        return r.failed(FaultKind.ReservedBit, level);
      }
      user &&= (lo & E_US) !== 0;
      writable &&= (lo & E_RW) !== 0;
      xd ||= cfg.nxe && (hi & EH_XD) !== 0;
      if (ad && ((lo & E_A) === 0 || (cfg.eafe === true && (lo & E_EA) === 0))) {
        this.pend(level, at, f.pa, lo | E_A | (cfg.eafe === true ? E_EA : 0));
      }
      const addr = ia32eAddr(lo, hi);
      if (level > 1 && !ps) {
        table = addr;
        continue;
      }

      const perms = this.perms(user, writable, xd);
      if (!permits(perms, access)) return r.failed(FaultKind.Permission, level);
      let leafLo = this.updOn[level] === 1 ? this.updLo[level]! : lo;
      const write = (access & ACCESS_WRITE) !== 0 && (access & ACCESS_EXEC) === 0;
      if (ad && write && (leafLo & E_D) === 0) {
        leafLo = (leafLo | E_D) >>> 0;
        this.pend(level, at, f.pa, leafLo);
      }
      for (let l = levels; l >= level; l--) {
        if (this.updOn[l] === 1 && !f.writeLo(this.updAddr[l]!, this.updPa[l]!, this.updLo[l]!, l, r)) return false;
      }

      const pageSize = POW2[shift]!;
      const base = ps ? addr - remPow2(addr, pageSize) : addr;
      r.outputAddr = base + remPow2(ia, pageSize);
      r.pageSize = pageSize;
      r.level = level;
      // A clean leaf is not yet writable without another walk (the D update).
      r.perms = ad && (leafLo & E_D) === 0 ? perms & ~(PERM_W | PERM_UW) : perms;
      r.descLo = leafLo >>> 0;
      r.descHi = hi;
      const pat = ps ? (lo & E_PAT_LARGE) !== 0 : (lo & E_PS) !== 0;
      // The PAT index (SDM 11.12.3): PAT:PCD:PWT.
      r.attrs = (pat ? 4 : 0) | ((lo & E_PCD) !== 0 ? 2 : 0) | ((lo & E_PWT) !== 0 ? 1 : 0);
      r.nonGlobal = (lo & E_G) === 0;
      return true;
    }
    return r.failed(FaultKind.Translation, 1);
  }

  /** SDM 4.6: rights for supervisor and user requests from the combined U/S, R/W, XD. */
  private perms(user: boolean, writable: boolean, xd: boolean): number {
    const cfg = this.cfg;
    const smapBlocked = cfg.smap === true && user;
    let p = 0;
    if (!smapBlocked) {
      p |= PERM_R;
      if (writable || !cfg.wp) p |= PERM_W;
    }
    if (!xd && !(cfg.smep === true && user)) p |= PERM_X;
    if (user) {
      p |= PERM_UR;
      if (writable) p |= PERM_UW;
      if (!xd) p |= PERM_UX;
    }
    return p;
  }

  private pend(level: number, addr: number, pa: number, lo: number): void {
    this.updOn[level] = 1;
    this.updAddr[level] = addr;
    this.updPa[level] = pa;
    this.updLo[level] = lo >>> 0;
  }
}
