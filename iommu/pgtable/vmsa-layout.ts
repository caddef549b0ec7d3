/**
 * VMSAv8-64 translation table descriptors and walk geometry (Arm ARM D8.3
 * "Translation table descriptor formats", D8.2 "Translation process").
 * SMMUv3 uses the same format for its stage 1 and stage 2 tables (SMMUv3
 * 3.4). Shared by the walker (hardware model) and builder (host driver).
 */
import { defineLayout, loMask, hiMask, maskBits, type Desc } from './fields.ts';
import { POW2 } from './walk-common.ts';

/** Bits common to table, block and page descriptors (D8.3.1, D8.3.2). */
export const VMSA_DESC = defineLayout({
  VALID: [0, 1, 'descriptor valid'],
  TYPE: [1, 1, '1 = table (levels < 3) or page (level 3); 0 = block (reserved at level 3)'],
  ATTRINDX: [2, 3, 'S1: MAIR index'],
  NS: [5, 1, 'S1: non-secure output'],
  AP1: [6, 1, 'S1 AP[1]: EL0 access allowed'],
  AP2: [7, 1, 'S1 AP[2]: read-only; with DBM set, writable-clean'],
  SH: [8, 2, 'shareability; OA[51:50] when DS=1'],
  AF: [10, 1, 'access flag'],
  NG: [11, 1, 'S1: not global (ASID-tagged)'],
  OA52_64K: [12, 4, '64K granule, 52-bit OA: OA[51:48]'],
  DBM: [51, 1, 'dirty bit modifier (FEAT_HAFDBS)'],
  CONTIG: [52, 1, 'contiguous hint'],
  PXN: [53, 1, 'S1: privileged execute never'],
  UXN: [54, 1, 'S1: unprivileged execute never (XN for one-privilege regimes)'],
  SW: [55, 4, 'software use'],
  PXNTABLE: [59, 1, 'S1 table: PXN for the subtree'],
  UXNTABLE: [60, 1, 'S1 table: UXN for the subtree'],
  APTABLE0: [61, 1, 'S1 table: no EL0 access in the subtree'],
  APTABLE1: [62, 1, 'S1 table: no write access in the subtree'],
  NSTABLE: [63, 1, 'S1 table: subtree is non-secure'],
});

/** Stage 2 block/page attributes (D8.3.2, "Stage 2 attributes"). */
export const VMSA_S2_DESC = defineLayout({
  VALID: [0, 1, 'descriptor valid'],
  TYPE: [1, 1, 'table/page vs block'],
  MEMATTR: [2, 4, 'stage 2 memory attributes'],
  S2AP_R: [6, 1, 'S2AP[0]: read allowed'],
  S2AP_W: [7, 1, 'S2AP[1]: write allowed; with DBM, clear = writable-clean'],
  SH: [8, 2, 'shareability'],
  AF: [10, 1, 'access flag'],
  DBM: [51, 1, 'dirty bit modifier'],
  CONTIG: [52, 1, 'contiguous hint'],
  XN: [53, 2, 'execute never: XN[1] only, or XN[1:0] with FEAT_XNX'],
});

/* Masks for the hot path, taken from the tables above. */
export const D_VALID = loMask(VMSA_DESC.VALID);
export const D_TYPE = loMask(VMSA_DESC.TYPE);
export const D_AF = loMask(VMSA_DESC.AF);
export const D_AP1 = loMask(VMSA_DESC.AP1);
export const D_AP2 = loMask(VMSA_DESC.AP2);
export const D_NG = loMask(VMSA_DESC.NG);
export const D_S2AP_R = loMask(VMSA_S2_DESC.S2AP_R);
export const D_S2AP_W = loMask(VMSA_S2_DESC.S2AP_W);
export const DH_DBM = hiMask(VMSA_DESC.DBM);
export const DH_PXN = hiMask(VMSA_DESC.PXN);
export const DH_UXN = hiMask(VMSA_DESC.UXN);
export const DH_PXNTABLE = hiMask(VMSA_DESC.PXNTABLE);
export const DH_UXNTABLE = hiMask(VMSA_DESC.UXNTABLE);
export const DH_APTABLE0 = hiMask(VMSA_DESC.APTABLE0);
export const DH_APTABLE1 = hiMask(VMSA_DESC.APTABLE1);
export const S2_XN_SHIFT = VMSA_S2_DESC.XN.lsb - 32;

export type VmsaGranule = 4096 | 16384 | 65536;

/** TCR.{I}PS / VTCR.PS / SMMU OAS encodings → bits (D19 TCR_EL1.IPS). */
export const VMSA_PS_BITS: readonly number[] = Object.freeze([32, 36, 40, 42, 44, 48, 52]);

export function granuleShift(g: VmsaGranule): number {
  return g === 4096 ? 12 : g === 16384 ? 14 : 16;
}

/** Input bits resolved per level: granule bits minus 3 (8-byte descriptors). */
export function granuleStride(g: VmsaGranule): number {
  return granuleShift(g) - 3;
}

/** Address bits below the part one entry at `level` resolves (level 3 = page). */
export function levelShift(pageShift: number, level: number): number {
  return pageShift + (3 - level) * (pageShift - 3);
}

/** Stage 1 start level: 4 - ceil((inputBits - pageShift) / stride) (D8.2.6). */
export function s1StartLevel(g: VmsaGranule, inputBits: number): number {
  const stride = granuleStride(g);
  return 4 - Math.floor((inputBits - 4) / stride);
}

/**
 * Stage 2 start level from VTCR.SL0 (and SL2 for 4K with DS), or null when
 * the encoding is reserved or inconsistent with the IPA size (D8.2.7
 * AArch64.S2InvalidSL / S2InconsistentSL). The start table must resolve
 * between 1 and stride+4 bits: at most 16 concatenated tables.
 */
export function s2StartLevel(g: VmsaGranule, sl0: number, sl2: boolean, ds: boolean, inputBits: number): number | null {
  let start: number;
  if (g === 4096) {
    if (ds && sl2) {
      if (sl0 !== 0) return null;
      start = -1;
    } else if (sl0 === 3) {
      return null; // level 3 start needs FEAT_TTST, not modelled
    } else {
      start = 2 - sl0;
    }
  } else {
    if (sl0 === 3 && (g === 65536 || !ds)) return null;
    start = 3 - sl0;
  }
  if (!s2StartConsistent(g, start, inputBits)) return null;
  return start;
}

export function s2StartConsistent(g: VmsaGranule, start: number, inputBits: number): boolean {
  const stride = granuleStride(g);
  const min = (3 - start) * stride + granuleShift(g) + 1;
  const max = min + stride - 1 + 4;
  return inputBits >= min && inputBits <= max;
}

/** SL0 (and SL2) that select `start` for a granule: the inverse of s2StartLevel. */
export function s2Sl0ForStartLevel(g: VmsaGranule, start: number): { sl0: number; sl2: boolean } {
  if (g === 4096) return start === -1 ? { sl0: 0, sl2: true } : { sl0: 2 - start, sl2: false };
  return { sl0: 3 - start, sl2: false };
}

/**
 * May a block descriptor sit at `level`? (AArch64.BlockDescSupported): 4K
 * at levels 1-2 (0 with DS), 16K at level 2 (1 with DS), 64K at level 2
 * (1 when the implementation has 52-bit PA).
 */
export function blockAllowed(g: VmsaGranule, level: number, ds: boolean, pa52: boolean): boolean {
  if (g === 4096) return level === 1 || level === 2 || (level === 0 && ds);
  if (g === 16384) return level === 2 || (level === 1 && ds);
  return level === 2 || (level === 1 && pa52);
}

/**
 * Where the output (or next-table) address lives in a descriptor (D8.3.1):
 * OA[47:pageShift] in bits 47:pageShift always; with DS (FEAT_LPA2, 4K/16K)
 * bits 49:48 too and OA[51:50] in bits 9:8; with the 64K granule and a 52-bit
 * OA (FEAT_LPA), OA[51:48] in bits 15:12.
 */
export interface VmsaAddrFormat {
  readonly pageShift: number;
  readonly ds: boolean;
  readonly oa52Lpa64k: boolean;
}

export function vmsaDescAddr(lo: number, hi: number, f: VmsaAddrFormat): number {
  const loPart = (lo >>> f.pageShift) * POW2[f.pageShift]!;
  let a = (hi & (f.ds ? 0x3ffff : 0xffff)) * 0x1_0000_0000 + loPart;
  if (f.ds) a += ((lo >>> 8) & 3) * POW2[50]!;
  else if (f.oa52Lpa64k) a += ((lo >>> 12) & 0xf) * POW2[48]!;
  return a;
}

/** Put address `pa` (aligned to the page size) into `d`, which holds no address bits yet. */
export function vmsaSetDescAddr(d: Desc, pa: number, f: VmsaAddrFormat): void {
  const hiAll = Math.floor(pa / 0x1_0000_0000);
  d.lo = (d.lo | ((pa % 0x1_0000_0000) & maskBits(f.pageShift, 32))) >>> 0;
  if (f.ds) {
    d.hi = (d.hi | (hiAll & 0x3ffff)) >>> 0;
    d.lo = (d.lo | (((hiAll >>> 18) & 3) << 8)) >>> 0;
  } else {
    d.hi = (d.hi | (hiAll & 0xffff)) >>> 0;
    if (f.oa52Lpa64k) d.lo = (d.lo | (((hiAll >>> 16) & 0xf) << 12)) >>> 0;
  }
}
