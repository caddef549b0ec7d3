/**
 * Host builder for VT-d second-stage tables (Linux intel "second level" /
 * generic_pt vtdss): R/W from IOMMU_* prot, PS for superpages, SNP when the
 * domain forces snooping; table entries carry R|W so the leaf decides.
 */
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import { ENTRY_INVALID, ENTRY_LEAF, ENTRY_TABLE, RadixBuilder, initBuilder, type EntryCodec, type RadixLevel } from './radix-builder.ts';
import { IOMMU_READ, IOMMU_WRITE, type TablePageAllocator } from '../../src/iommu-core/io-pgtable.ts';
import { EINVAL } from '../../src/uapi/errno.ts';
import { S_A, S_D, S_PS, S_R, S_SNP, S_W } from './vtd-ss-layout.ts';
import { ia32eAddr, ia32eShift } from './ia32e-layout.ts';
import { x86Levels } from './ia32e-builder.ts';
import { POW2 } from './walk-common.ts';

export interface VtdSsBuilderConfig {
  levels: 3 | 4 | 5;
  /** Host address width: output addresses must be below 2^haw. */
  haw: number;
  /** Set SNP in every leaf (IOMMU_CAP_ENFORCE_CACHE_COHERENCY domains). */
  forceSnoop?: boolean;
  /** Preset A, and D on writable leaves, so SSADE hardware never writes them. Default false. */
  presetAccessDirty?: boolean;
  /** CAP.SLLPS superpages. Default both true. */
  superpage2M?: boolean;
  superpage1G?: boolean;
  pgsizeBitmap?: number;
}

export class VtdSsBuilder extends RadixBuilder {
  /** The AW encoding for the context/PASID entry (1: 3-level, 2: 4-level, 3: 5-level). */
  readonly aw: number;

  constructor(mem: PhysMem, alloc: TablePageAllocator, readonly cfg: VtdSsBuilderConfig, levels: RadixLevel[]) {
    super(`vtd-ss-${cfg.levels}level`, mem, alloc, levels, vtdSsCodec(cfg), Math.min(53, 12 + 9 * cfg.levels), cfg.haw);
    this.aw = cfg.levels - 2;
  }
}

export function createVtdSsBuilder(mem: PhysMem, alloc: TablePageAllocator, cfg: VtdSsBuilderConfig): VtdSsBuilder | number {
  if (![3, 4, 5].includes(cfg.levels) || !(cfg.haw >= 32 && cfg.haw <= 52)) return -EINVAL;
  const levels = x86Levels(cfg.levels, cfg.superpage1G !== false, cfg.pgsizeBitmap, cfg.superpage2M !== false);
  return initBuilder(new VtdSsBuilder(mem, alloc, cfg, levels));
}

function vtdSsCodec(cfg: VtdSsBuilderConfig): EntryCodec {
  const preset = cfg.presetAccessDirty === true;
  return {
    kind(lo: number, _hi: number, level: number) {
      if ((lo & (S_R | S_W)) === 0) return ENTRY_INVALID;
      return level === 1 || (lo & S_PS) !== 0 ? ENTRY_LEAF : ENTRY_TABLE;
    },
    addr(lo: number, hi: number, level: number) {
      const a = ia32eAddr(lo, hi);
      return level > 1 && (lo & S_PS) !== 0 ? a - (a % POW2[ia32eShift(level)]!) : a;
    },
    table(d, pa) {
      d.lo = (S_R | S_W | (pa % 0x1_0000_0000)) >>> 0;
      d.hi = Math.floor(pa / 0x1_0000_0000) >>> 0;
    },
    leaf(d, pa, prot, level) {
      let lo = pa % 0x1_0000_0000;
      if ((prot & IOMMU_READ) !== 0) lo |= S_R;
      if ((prot & IOMMU_WRITE) !== 0) lo |= S_W | (preset ? S_D : 0);
      if (preset) lo |= S_A;
      if (cfg.forceSnoop === true) lo |= S_SNP;
      if (level > 1) lo |= S_PS;
      d.lo = lo >>> 0;
      d.hi = Math.floor(pa / 0x1_0000_0000) >>> 0;
    },
  };
}
