/**
 * VMSAv8-64 translation table descriptors and walk geometry (Arm ARM D8.3
 * "Translation table descriptor formats", D8.2 "Translation process").
 * SMMUv3 uses the same format for its stage 1 and stage 2 tables (SMMUv3
 * 3.4). Shared by the walker (hardware model) and builder (host driver).
 */
import { defineLayout, fieldGet, fieldPrep, hiMask, loMask, maskBits, type U64Halves } from '../../src/hw/layout.ts';
import { POW2 } from './walk-common.ts';

/** Bits common to table, block and page descriptors (D8.3.1, D8.3.2), `[name, msb, lsb?]`. */
export const VMSA_DESC = defineLayout('VMSA_DESC', 8, [
  ['VALID', 0], // descriptor valid
  ['TYPE', 1], // 1 = table (levels < 3) or page (level 3); 0 = block (reserved at level 3)
  ['ATTRINDX', 4, 2], // S1: MAIR index
  ['NS', 5], // S1: non-secure output
  ['AP1', 6], // S1 AP[1]: EL0 access allowed
  ['AP2', 7], // S1 AP[2]: read-only; with DBM set, writable-clean
  ['SH', 9, 8], // shareability; OA[51:50] when DS=1
  ['AF', 10], // access flag
  ['NG', 11], // S1: not global (ASID-tagged)
  ['OA52_64K', 15, 12], // 64K granule, 52-bit OA: OA[51:48]
  ['DBM', 51], // dirty bit modifier (FEAT_HAFDBS)
  ['CONTIG', 52], // contiguous hint
  ['PXN', 53], // S1: privileged execute never
  ['UXN', 54], // S1: unprivileged execute never (XN for one-privilege regimes)
  ['SW', 58, 55], // software use
  ['PXNTABLE', 59], // S1 table: PXN for the subtree
  ['UXNTABLE', 60], // S1 table: UXN for the subtree
  ['APTABLE0', 61], // S1 table: no EL0 access in the subtree
  ['APTABLE1', 62], // S1 table: no write access in the subtree
  ['NSTABLE', 63], // S1 table: subtree is non-secure
]);

/** Stage 2 block/page attributes (D8.3.2, "Stage 2 attributes"). */
export const VMSA_S2_DESC = defineLayout('VMSA_S2_DESC', 8, [
  ['VALID', 0], // descriptor valid
  ['TYPE', 1], // table/page vs block
  ['MEMATTR', 5, 2], // stage 2 memory attributes
  ['S2AP_R', 6], // S2AP[0]: read allowed
  ['S2AP_W', 7], // S2AP[1]: write allowed; with DBM, clear = writable-clean
  ['SH', 9, 8], // shareability
  ['AF', 10], // access flag
  ['DBM', 51], // dirty bit modifier
  ['CONTIG', 52], // contiguous hint
  ['XN', 54, 53], // execute never: XN[1] only, or XN[1:0] with FEAT_XNX
]);

/* Masks for the hot path, taken from the tables above. */
export const D_VALID = loMask(VMSA_DESC.fields.VALID);
export const D_TYPE = loMask(VMSA_DESC.fields.TYPE);
export const D_AF = loMask(VMSA_DESC.fields.AF);
export const D_AP1 = loMask(VMSA_DESC.fields.AP1);
export const D_AP2 = loMask(VMSA_DESC.fields.AP2);
export const D_NG = loMask(VMSA_DESC.fields.NG);
export const D_ATTRINDX = VMSA_DESC.fields.ATTRINDX;
export const D_MEMATTR = VMSA_S2_DESC.fields.MEMATTR;
export const D_S2AP_R = loMask(VMSA_S2_DESC.fields.S2AP_R);
export const D_S2AP_W = loMask(VMSA_S2_DESC.fields.S2AP_W);
export const DH_DBM = hiMask(VMSA_DESC.fields.DBM);
export const DH_PXN = hiMask(VMSA_DESC.fields.PXN);
export const DH_UXN = hiMask(VMSA_DESC.fields.UXN);
export const DH_PXNTABLE = hiMask(VMSA_DESC.fields.PXNTABLE);
export const DH_UXNTABLE = hiMask(VMSA_DESC.fields.UXNTABLE);
export const DH_APTABLE0 = hiMask(VMSA_DESC.fields.APTABLE0);
export const DH_APTABLE1 = hiMask(VMSA_DESC.fields.APTABLE1);
/** Stage 2 XN[1:0] in the high half: its mask and shift there. */
export const DH_S2_XN = hiMask(VMSA_S2_DESC.fields.XN);
export const S2_XN_SHIFT = VMSA_S2_DESC.fields.XN.lsb - 32;

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

/** The high-half bits of an OA: OA[47:32], or OA[49:32] with DS. */
const OA_HI_48 = maskBits(0, 48 - 32);
const OA_HI_50 = maskBits(0, 50 - 32);
/** With DS, OA[51:50] sit in SH; with the 64K granule's 52-bit OA, OA[51:48] in OA52_64K. */
const OA_51_50 = VMSA_DESC.fields.SH;
const OA_51_48 = VMSA_DESC.fields.OA52_64K;

export function vmsaDescAddr(lo: number, hi: number, f: VmsaAddrFormat): number {
  const loPart = (lo >>> f.pageShift) * POW2[f.pageShift]!;
  let a = (hi & (f.ds ? OA_HI_50 : OA_HI_48)) * 0x1_0000_0000 + loPart;
  if (f.ds) a += fieldGet(OA_51_50, lo) * POW2[50]!;
  else if (f.oa52Lpa64k) a += fieldGet(OA_51_48, lo) * POW2[48]!;
  return a;
}

/** Put address `pa` (aligned to the page size) into `d`, which holds no address bits yet. */
export function vmsaSetDescAddr(d: U64Halves, pa: number, f: VmsaAddrFormat): void {
  const hiAll = Math.floor(pa / 0x1_0000_0000);
  d.lo = (d.lo | ((pa % 0x1_0000_0000) & maskBits(f.pageShift, 32))) >>> 0;
  if (f.ds) {
    d.hi = (d.hi | (hiAll & OA_HI_50)) >>> 0;
    d.lo = (d.lo | fieldPrep(OA_51_50, hiAll >>> (50 - 32))) >>> 0;
  } else {
    d.hi = (d.hi | (hiAll & OA_HI_48)) >>> 0;
    if (f.oa52Lpa64k) d.lo = (d.lo | fieldPrep(OA_51_48, hiAll >>> (48 - 32))) >>> 0;
  }
}
