/**
 * Host builder for IA-32e tables: VT-d first-stage domains (Linux intel
 * first-level page tables) and x86 process page tables. Table entries are
 * fully permissive (P, R/W, U/S, A), so the leaf alone decides access.
 */
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import { ENTRY_INVALID, ENTRY_LEAF, ENTRY_TABLE, RadixBuilder, initBuilder, type EntryCodec, type RadixLevel } from './radix-builder.ts';
import { IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_WRITE, type TablePageAllocator } from '../../src/iommu-core/io-pgtable.ts';
import { EINVAL } from '../../src/uapi/errno.ts';
import { E_A, E_D, E_P, E_PS, E_RW, E_US, EH_XD, ia32eAddr, ia32eShift } from './ia32e-layout.ts';
import { POW2 } from './walk-common.ts';

export interface Ia32eBuilderConfig {
  levels: 4 | 5;
  /** MAXPHYADDR / HAW: output addresses must be below 2^maxPhysBits. */
  maxPhysBits: number;
  /** Encode IOMMU_NOEXEC as XD (needs NXE in the walker). Default true. */
  nxe?: boolean;
  /** Preset A, and D on writable leaves, so hardware never writes them (Linux first-level does). Default true. */
  presetAccessDirty?: boolean;
  /** Use 1 GiB pages. Default true. */
  page1G?: boolean;
  /** Restrict page sizes (subset of 4K | 2M | 1G). */
  pgsizeBitmap?: number;
}

export class Ia32eBuilder extends RadixBuilder {
  constructor(mem: PhysMem, alloc: TablePageAllocator, readonly cfg: Ia32eBuilderConfig, levels: RadixLevel[]) {
    // Lower canonical half only: 2^47 (4-level); 5-level is capped by exact JS numbers.
    super(`ia32e-${cfg.levels}level`, mem, alloc, levels, ia32eCodec(cfg), cfg.levels === 5 ? 53 : 47, cfg.maxPhysBits);
  }
}

export function createIa32eBuilder(mem: PhysMem, alloc: TablePageAllocator, cfg: Ia32eBuilderConfig): Ia32eBuilder | number {
  if ((cfg.levels !== 4 && cfg.levels !== 5) || !(cfg.maxPhysBits >= 32 && cfg.maxPhysBits <= 52)) return -EINVAL;
  const levels = x86Levels(cfg.levels, cfg.page1G !== false, cfg.pgsizeBitmap);
  return initBuilder(new Ia32eBuilder(mem, alloc, cfg, levels));
}

/** Radix geometry shared by IA-32e and VT-d second stage: 4 KiB tables of 512 entries. */
export function x86Levels(top: number, page1G: boolean, bitmap: number | undefined, page2M = true): RadixLevel[] {
  const levels: RadixLevel[] = [];
  for (let level = top; level >= 1; level--) {
    const shift = ia32eShift(level);
    const wanted = bitmap === undefined || Math.floor(bitmap / POW2[shift]!) % 2 === 1;
    const hw = level === 1 || (level === 2 && page2M) || (level === 3 && page1G);
    levels.push({ native: level, shift, entries: 512, tableBytes: 4096, leafOk: hw && (wanted || level === 1) });
  }
  return levels;
}

function ia32eCodec(cfg: Ia32eBuilderConfig): EntryCodec {
  const preset = cfg.presetAccessDirty !== false;
  return {
    kind(lo: number, _hi: number, level: number) {
      if ((lo & E_P) === 0) return ENTRY_INVALID;
      return level === 1 || (lo & E_PS) !== 0 ? ENTRY_LEAF : ENTRY_TABLE;
    },
    addr(lo: number, hi: number, level: number) {
      const a = ia32eAddr(lo, hi);
      // A large page's bit 12 is PAT, not address.
      return level > 1 && (lo & E_PS) !== 0 ? a - (a % POW2[ia32eShift(level)]!) : a;
    },
    table(d, pa) {
      d.lo = (E_P | E_RW | E_US | E_A | (pa % 0x1_0000_0000)) >>> 0;
      d.hi = Math.floor(pa / 0x1_0000_0000) >>> 0;
    },
    leaf(d, pa, prot, level) {
      let lo = E_P | (pa % 0x1_0000_0000);
      if ((prot & IOMMU_WRITE) !== 0) lo |= E_RW | (preset ? E_D : 0);
      if ((prot & IOMMU_PRIV) === 0) lo |= E_US;
      if (preset) lo |= E_A;
      if (level > 1) lo |= E_PS;
      d.lo = lo >>> 0;
      d.hi = (Math.floor(pa / 0x1_0000_0000) | ((prot & IOMMU_NOEXEC) !== 0 && cfg.nxe !== false ? EH_XD : 0)) >>> 0;
    },
  };
}
