/**
 * Host builder for VMSAv8-64 tables, stage 1 or stage 2, as Linux
 * io-pgtable-arm builds them for the SMMUv3 driver: AF preset, stage 1
 * AP/UXN/PXN/AttrIndx from IOMMU_* prot, stage 2 S2AP/MemAttr/XN, and
 * stage 2 start-level concatenation when it saves a level.
 */
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import { setBits64, type U64Halves } from '../../src/hw/layout.ts';
import { ENTRY_INVALID, ENTRY_LEAF, ENTRY_TABLE, RadixBuilder, initBuilder, type EntryCodec, type EntryKind, type RadixLevel } from './radix-builder.ts';
import { IOMMU_CACHE, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE, type TablePageAllocator } from '../../src/iommu-core/io-pgtable.ts';
import { EINVAL } from '../../src/uapi/errno.ts';
import {
  D_AF,
  D_AP1,
  D_AP2,
  D_NG,
  D_S2AP_R,
  D_S2AP_W,
  D_TYPE,
  D_VALID,
  VMSA_DESC,
  VMSA_PS_BITS,
  VMSA_S2_DESC,
  blockAllowed,
  granuleShift,
  levelShift,
  s1StartLevel,
  s2Sl0ForStartLevel,
  s2StartConsistent,
  vmsaDescAddr,
  vmsaSetDescAddr,
  type VmsaAddrFormat,
  type VmsaGranule,
} from './vmsa-layout.ts';
import { POW2 } from './walk-common.ts';

/** MAIR indices the driver programs (Linux ARM_LPAE_MAIR_ATTR_IDX_*). */
export const MAIR_IDX_NC = 0;
export const MAIR_IDX_CACHE = 1;
export const MAIR_IDX_DEV = 2;

/** Stage 2 MemAttr values (Arm ARM D8.6.5): Normal WB, Normal NC, Device-nGnRE. */
export const S2_MEMATTR_OIWB = 0xf;
export const S2_MEMATTR_NC = 0x5;
export const S2_MEMATTR_DEV = 0x1;

const SH_IS = 3;
const SH_OS = 2;

export interface VmsaBuilderConfig {
  stage: 1 | 2;
  granule: VmsaGranule;
  /** Input address bits (VA for stage 1, IPA for stage 2). */
  iaBits: number;
  /** Output address bits (one of VMSA_PS_BITS). */
  oaBits: number;
  /** FEAT_LPA2 descriptors (4K/16K with 52-bit addresses). */
  ds?: boolean;
  /** Stage 2: concatenate start tables (≤ 16) instead of an extra level. Default true. */
  concatenate?: boolean;
  /** Stage 1: set nG so translations are ASID-tagged. */
  nonGlobal?: boolean;
  /** Set DBM on writable leaves for HTTU dirty tracking (Linux IO_PGTABLE_QUIRK_ARM_HD). */
  dbm?: boolean;
  /** Restrict the page sizes used (Linux cfg->pgsize_bitmap); default all the granule allows. */
  pgsizeBitmap?: number;
}

export class VmsaBuilder extends RadixBuilder {
  /** Arm lookup level of the root table. */
  readonly startLevel: number;
  /** TxSZ for the walker: 64 - iaBits. */
  readonly tsz: number;
  /** Stage 2: the SL0/SL2 that select startLevel. */
  readonly sl0: number;
  readonly sl2: boolean;
  readonly rootBytes: number;

  constructor(mem: PhysMem, alloc: TablePageAllocator, readonly cfg: VmsaBuilderConfig, geo: VmsaGeometry) {
    super(`vmsav8-s${cfg.stage}-${cfg.granule / 1024}k`, mem, alloc, geo.levels, geo.codec, cfg.iaBits, geo.oaBits);
    this.startLevel = geo.startLevel;
    this.tsz = 64 - cfg.iaBits;
    const s = s2Sl0ForStartLevel(cfg.granule, geo.startLevel);
    this.sl0 = s.sl0;
    this.sl2 = s.sl2;
    this.rootBytes = geo.levels[0]!.tableBytes;
  }
}

interface VmsaGeometry {
  levels: RadixLevel[];
  codec: EntryCodec;
  startLevel: number;
  oaBits: number;
}

/** Build an empty table (root allocated); a negative errno on bad config or no memory. */
export function createVmsaBuilder(mem: PhysMem, alloc: TablePageAllocator, cfg: VmsaBuilderConfig): VmsaBuilder | number {
  const geo = vmsaGeometry(cfg);
  if (geo === null) return -EINVAL;
  return initBuilder(new VmsaBuilder(mem, alloc, cfg, geo));
}

function vmsaGeometry(cfg: VmsaBuilderConfig): VmsaGeometry | null {
  const g = cfg.granule;
  if (g !== 4096 && g !== 16384 && g !== 65536) return null;
  const pageShift = granuleShift(g);
  const stride = pageShift - 3;
  const ds = cfg.ds === true && g !== 65536;
  if (!VMSA_PS_BITS.includes(cfg.oaBits)) return null;
  const oaBits = !ds && g !== 65536 ? Math.min(cfg.oaBits, 48) : cfg.oaBits;
  const maxIa = ds || g === 65536 ? 52 : 48;
  if (!Number.isInteger(cfg.iaBits) || cfg.iaBits < 25 || cfg.iaBits > maxIa) return null;
  let start = s1StartLevel(g, cfg.iaBits);
  if (cfg.stage === 2) {
    // Concatenate (as Linux does from level 0) when the start table would hold at most
    // 16 entries; a 4K level-3 start would need FEAT_TTST, so not there.
    const startEntries = POW2[cfg.iaBits - levelShift(pageShift, start)]!;
    const deepest = g === 4096 ? 2 : 3;
    if (cfg.concatenate !== false && startEntries <= 16 && start < deepest) start++;
    if (!s2StartConsistent(g, start, cfg.iaBits)) return null;
  }
  const addr: VmsaAddrFormat = { pageShift, ds, oa52Lpa64k: g === 65536 && oaBits === 52 };
  const pa52 = oaBits === 52;
  const levels: RadixLevel[] = [];
  for (let level = start; level <= 3; level++) {
    const shift = levelShift(pageShift, level);
    const entries = level === start ? POW2[cfg.iaBits - shift]! : POW2[stride]!;
    const size = POW2[shift]!;
    const wanted = cfg.pgsizeBitmap === undefined || Math.floor(cfg.pgsizeBitmap / size) % 2 === 1;
    const leafOk = (level === 3 || blockAllowed(g, level, ds, pa52)) && wanted;
    levels.push({ native: level, shift, entries, tableBytes: Math.max(entries * 8, 64), leafOk });
  }
  if (!levels[levels.length - 1]!.leafOk) return null;
  return { levels, codec: vmsaCodec(cfg, addr), startLevel: start, oaBits };
}

function vmsaCodec(cfg: VmsaBuilderConfig, addr: VmsaAddrFormat): EntryCodec {
  const stage1 = cfg.stage === 1;
  /** A leaf's bits other than the output address, from a zeroed descriptor. */
  const attrs = (d: U64Halves, prot: number, level: number): void => {
    d.lo = D_VALID | D_AF | (level === 3 ? D_TYPE : 0);
    if (!addr.ds) setBits64(d, VMSA_DESC.fields.SH, (prot & IOMMU_CACHE) !== 0 ? SH_IS : SH_OS);
    const writable = (prot & IOMMU_WRITE) !== 0;
    if (stage1) {
      if (!writable) d.lo |= D_AP2;
      if ((prot & IOMMU_PRIV) === 0) d.lo |= D_AP1;
      if (cfg.nonGlobal === true) d.lo |= D_NG;
      const idx = (prot & IOMMU_MMIO) !== 0 ? MAIR_IDX_DEV : (prot & IOMMU_CACHE) !== 0 ? MAIR_IDX_CACHE : MAIR_IDX_NC;
      setBits64(d, VMSA_DESC.fields.ATTRINDX, idx);
      if ((prot & IOMMU_NOEXEC) !== 0) {
        setBits64(d, VMSA_DESC.fields.UXN, 1);
        setBits64(d, VMSA_DESC.fields.PXN, 1);
      }
    } else {
      if ((prot & IOMMU_READ) !== 0) d.lo |= D_S2AP_R;
      if (writable) d.lo |= D_S2AP_W;
      const attr = (prot & IOMMU_MMIO) !== 0 ? S2_MEMATTR_DEV : (prot & IOMMU_CACHE) !== 0 ? S2_MEMATTR_OIWB : S2_MEMATTR_NC;
      setBits64(d, VMSA_S2_DESC.fields.MEMATTR, attr);
      if ((prot & IOMMU_NOEXEC) !== 0) setBits64(d, VMSA_S2_DESC.fields.XN, 2);
    }
    if (cfg.dbm === true && writable) setBits64(d, VMSA_DESC.fields.DBM, 1);
    d.lo >>>= 0;
  };
  // Those bits per (prot, level), worked out once: a leaf is written per mapped page (per CPU or I/O page fault).
  const TPL_PROTS = 256;
  const tplLo = new Float64Array(TPL_PROTS * 4).fill(-1);
  const tplHi = new Float64Array(TPL_PROTS * 4);
  return {
    kind(lo: number, _hi: number, level: number): EntryKind {
      if ((lo & D_VALID) === 0) return ENTRY_INVALID;
      return (lo & D_TYPE) !== 0 && level < 3 ? ENTRY_TABLE : ENTRY_LEAF;
    },
    addr(lo: number, hi: number): number {
      return vmsaDescAddr(lo, hi, addr);
    },
    table(d: U64Halves, pa: number): void {
      d.lo = D_VALID | D_TYPE;
      vmsaSetDescAddr(d, pa, addr);
    },
    leaf(d: U64Halves, pa: number, prot: number, level: number): void {
      const k = prot * 4 + level;
      // `d` comes zeroed (EntryCodec.leaf); a prot or level outside the template table is worked out each time.
      if (Number.isInteger(k) && prot >= 0 && prot < TPL_PROTS && level >= 0 && level < 4) {
        if (tplLo[k] === -1) {
          attrs(d, prot, level);
          tplLo[k] = d.lo;
          tplHi[k] = d.hi;
        } else {
          d.lo = tplLo[k]!;
          d.hi = tplHi[k]!;
        }
      } else {
        attrs(d, prot, level);
      }
      vmsaSetDescAddr(d, pa, addr);
    },
  };
}
