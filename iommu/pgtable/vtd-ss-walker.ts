/**
 * VT-d second-stage walk (VT-d spec §3.7 "Second-Stage Translation", §3.7.2
 * access rights, §3.9 "Accessed, Extended Accessed, and Dirty Flags").
 * Rights are the AND of R/W (and X) over all levels; second stage has no
 * privilege, so the user and supervisor permission bits are the same.
 */
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import { ACCESS_EXEC, ACCESS_WRITE, FaultKind, PERM_R, PERM_UR, PERM_UW, PERM_UX, PERM_W, PERM_X, permits, type PageTableWalker, type WalkResult } from './types.ts';
import { S_A, S_D, S_PS, S_R, S_SNP, S_W, S_X, vtdSsReserved } from './vtd-ss-layout.ts';
import { ia32eAddr, ia32eShift } from './ia32e-layout.ts';
import { DescFetcher, POW2, inRange, tableIndex } from './walk-common.ts';

export interface VtdSsWalkConfig {
  levels: 3 | 4 | 5;
  /** SLPTPTR / SSPTPTR (bits 11:0 ignored). */
  root: number;
  /** Host address width: entry address bits at or above it are reserved. */
  haw: number;
  /** Input addresses must be below 2^inputBits (MGAW); default the table's reach (39/48/57). */
  inputBits?: number;
  /** Second-stage A/D (PASID entry SSADE). */
  ad?: boolean;
  /**
   * Enforce X for execute requests (the PASID entry's SLEE of VT-d 3.0).
   * Otherwise bit 2 is ignored and an execute request needs read access,
   * which is how hardware without second-stage execute control behaves.
   */
  executeEnable?: boolean;
  /** SNP allowed in leaves (scalable mode or ECAP.SC). Default true. */
  snoopControl?: boolean;
  /** CAP.SLLPS: 2 MiB and 1 GiB superpages. Default both true. */
  superpage2M?: boolean;
  superpage1G?: boolean;
}

const MAX_LEVELS = 5;

export class VtdSsWalker implements PageTableWalker {
  readonly format: string;
  private readonly fetcher: DescFetcher;
  private cfg!: VtdSsWalkConfig;
  private root = 0;
  private inputBits = 48;
  private rsv: { lo: number; hi: number }[] = [];
  private readonly updAddr = new Float64Array(MAX_LEVELS + 1);
  private readonly updLo = new Uint32Array(MAX_LEVELS + 1);
  private readonly updOn = new Uint8Array(MAX_LEVELS + 1);

  constructor(mem: PhysMem, cfg: VtdSsWalkConfig) {
    this.fetcher = new DescFetcher(mem, undefined);
    this.format = `vtd-ss-${cfg.levels}level`;
    this.configure(cfg);
  }

  configure(cfg: VtdSsWalkConfig): void {
    this.cfg = cfg;
    this.root = cfg.root - (cfg.root % 4096);
    const reach = 12 + 9 * cfg.levels;
    this.inputBits = Math.min(cfg.inputBits ?? reach, reach, 53);
    const haw = Math.min(52, Math.max(32, cfg.haw));
    const snp = cfg.snoopControl !== false;
    this.rsv = [];
    for (let level = 0; level <= MAX_LEVELS; level++) {
      for (const leaf of [false, true]) {
        this.rsv.push(vtdSsReserved(level, leaf, haw, snp, cfg.superpage2M !== false, cfg.superpage1G !== false));
      }
    }
  }

  walk(ia: number, access: number, r: WalkResult): boolean {
    r.reset();
    const cfg = this.cfg;
    const levels: number = cfg.levels;
    if (!inRange(ia, this.inputBits)) return r.failed(FaultKind.InputRange, levels);
    const ad = cfg.ad === true;
    const f = this.fetcher;
    let table = this.root;
    let rights = S_R | S_W | S_X;
    this.updOn.fill(0);

    for (let level = levels; level >= 1; level--) {
      const shift = ia32eShift(level);
      const at = table + tableIndex(ia, shift, 512) * 8;
      if (!f.fetch(at, level, r)) return false;
      const lo = f.lo;
      const hi = f.hi;
      if ((lo & (S_R | S_W)) === 0) return r.failed(FaultKind.Translation, level);
      const leaf = level === 1 || ((level === 2 || level === 3) && (lo & S_PS) !== 0);
      const rsv = this.rsv[level * 2 + (leaf ? 1 : 0)]!;
      if ((lo & rsv.lo) !== 0 || (hi & rsv.hi) !== 0) return r.failed(FaultKind.ReservedBit, level);
      rights &= lo;
      if (ad && (lo & S_A) === 0) this.pend(level, f.pa, lo | S_A);
      const addr = ia32eAddr(lo, hi);
      if (!leaf) {
        table = addr;
        continue;
      }

      let perms = 0;
      if ((rights & S_R) !== 0) perms |= PERM_R | PERM_UR;
      if ((rights & S_W) !== 0) perms |= PERM_W | PERM_UW;
      if (cfg.executeEnable === true ? (rights & S_X) !== 0 : (rights & S_R) !== 0) perms |= PERM_X | PERM_UX;
      if (!permits(perms, access)) return r.failed(FaultKind.Permission, level);
      let leafLo = this.updOn[level] === 1 ? this.updLo[level]! : lo;
      const write = (access & ACCESS_WRITE) !== 0 && (access & ACCESS_EXEC) === 0;
      if (ad && write && (leafLo & S_D) === 0) {
        leafLo = (leafLo | S_D) >>> 0;
        this.pend(level, f.pa, leafLo);
      }
      for (let l = levels; l >= level; l--) {
        if (this.updOn[l] === 1 && !f.writeLo(this.updAddr[l]!, this.updAddr[l]!, this.updLo[l]!, l, r)) return false;
      }

      const pageSize = POW2[shift]!;
      r.outputAddr = addr - (addr % pageSize) + (ia % pageSize);
      r.pageSize = pageSize;
      r.level = level;
      r.perms = ad && (leafLo & S_D) === 0 ? perms & ~(PERM_W | PERM_UW) : perms;
      r.descLo = leafLo >>> 0;
      r.descHi = hi;
      r.attrs = (lo & S_SNP) !== 0 ? 1 : 0;
      return true;
    }
    return r.failed(FaultKind.Translation, 1);
  }

  private pend(level: number, pa: number, lo: number): void {
    this.updOn[level] = 1;
    this.updAddr[level] = pa;
    this.updLo[level] = lo >>> 0;
  }
}
