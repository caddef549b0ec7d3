/**
 * VT-d second-stage paging entries (Intel VT-d spec §9.8 "Second-Stage
 * Paging Entries", §3.7 "Second-Stage Translation"). 3, 4 or 5 levels of
 * 512-entry tables chosen by the AW/SAGAW encoding; levels are numbered as
 * the spec's structures: 5 = SS-PML5E ... 1 = SS-PTE.
 */
import { defineLayout, hiMask, loMask, maskBits } from '../../src/hw/layout.ts';

/** `[name, msb, lsb?]`, bits of the 64-bit entry. */
export const VTD_SS_ENTRY = defineLayout('VTD_SS_ENTRY', 8, [
  ['R', 0], // read allowed; R = W = 0 is not-present
  ['W', 1], // write allowed
  ['X', 2], // execute allowed; honoured only when the walker enables execute (SLEE)
  ['EMT', 5, 3], // leaf: extended memory type
  ['IPAT', 6], // leaf: ignore PAT
  ['PS', 7], // SS-PDPTE: 1 GiB page, SS-PDE: 2 MiB page; reserved in SS-PML4E/PML5E
  ['A', 8], // accessed, set by hardware when second-stage A/D is enabled (SSADE)
  ['D', 9], // leaf: dirty, set by hardware on writes when SSADE
  ['SNP', 11], // leaf: snoop behaviour; reserved in non-leaf entries
  ['ADDR', 51, 12], // address bits 51:12; bits at or above HAW are reserved
  ['TM', 62], // reserved (was transient mapping before VT-d 3.0)
]);

export const S_R = loMask(VTD_SS_ENTRY.fields.R);
export const S_W = loMask(VTD_SS_ENTRY.fields.W);
export const S_X = loMask(VTD_SS_ENTRY.fields.X);
export const S_PS = loMask(VTD_SS_ENTRY.fields.PS);
export const S_A = loMask(VTD_SS_ENTRY.fields.A);
export const S_D = loMask(VTD_SS_ENTRY.fields.D);
export const S_SNP = loMask(VTD_SS_ENTRY.fields.SNP);
export const SH_TM = hiMask(VTD_SS_ENTRY.fields.TM);

/** SAGAW/AW encodings → levels (VT-d §9.4 context entry AW; 1: 39-bit 3-level, 2: 48-bit 4-level, 3: 57-bit 5-level). */
export const VTD_AW_LEVELS: Readonly<Record<number, number>> = Object.freeze({ 1: 3, 2: 4, 3: 5 });

/**
 * Reserved bits of a present entry: address bits 51:HAW, bit 62, SNP in
 * non-leaf entries (and in leaves when snoop control is unsupported), PS
 * where no superpage of that size is supported, and the address bits below
 * a superpage's alignment (the same masks QEMU's intel_iommu applies).
 */
export function vtdSsReserved(level: number, leaf: boolean, haw: number, snpOk: boolean, sp2M: boolean, sp1G: boolean): { lo: number; hi: number } {
  let lo = 0;
  const hi = maskBits(Math.max(0, haw - 32), 20) | SH_TM;
  if (!leaf || !snpOk) lo |= S_SNP;
  if (level >= 4 || (level === 3 && !sp1G) || (level === 2 && !sp2M)) lo |= S_PS;
  if (leaf && level === 2) lo |= maskBits(12, 21);
  if (leaf && level === 3) lo |= maskBits(12, 30);
  return { lo: lo >>> 0, hi: hi >>> 0 };
}
