/**
 * IA-32e paging-structure entries, 4-level and 5-level (Intel SDM Vol. 3A
 * §4.5, Tables 4-15 to 4-20). The same format is the VT-d first-stage table
 * (VT-d spec §9.7 "First-Stage Paging Entries"). Levels are numbered as the
 * SDM's structures: 5 = PML5E, 4 = PML4E, 3 = PDPTE, 2 = PDE, 1 = PTE.
 */
import { defineLayout, hiMask, loMask, maskBits } from '../../src/hw/layout.ts';

/** `[name, msb, lsb?]`, bits of the 64-bit entry. */
export const IA32E_ENTRY = defineLayout('IA32E_ENTRY', 8, [
  ['P', 0], // present
  ['RW', 1], // writes allowed (for every level above the page too)
  ['US', 2], // user-mode accesses allowed
  ['PWT', 3], // page-level write-through
  ['PCD', 4], // page-level cache disable
  ['A', 5], // accessed
  ['D', 6], // dirty (leaf only)
  ['PS', 7], // PDPTE: 1 GiB page, PDE: 2 MiB page; PTE: PAT; reserved in PML4E/PML5E
  ['G', 8], // global (leaf only)
  ['EA', 10], // VT-d first stage: extended-accessed, set when the PASID entry has EAFE
  ['ADDR', 51, 12], // physical address bits 51:12 (bit 12 of a 2 MiB/1 GiB page is its PAT); bits above MAXPHYADDR are reserved
  ['XD', 63], // execute disable; reserved when IA32_EFER.NXE = 0
]);

/** A PDPTE or PDE that maps a page (PS = 1): bit 12 is its PAT and the address starts above it (SDM Tables 4-16, 4-18). */
export const IA32E_LARGE_ENTRY = defineLayout('IA32E_LARGE_ENTRY', 8, [
  ...IA32E_ENTRY.order.filter((f) => f.name !== 'ADDR').map((f) => [f.name, f.msb, f.lsb] as const),
  ['PAT', 12],
  ['ADDR', 51, 13],
]);

export const E_P = loMask(IA32E_ENTRY.fields.P);
export const E_RW = loMask(IA32E_ENTRY.fields.RW);
export const E_US = loMask(IA32E_ENTRY.fields.US);
export const E_PWT = loMask(IA32E_ENTRY.fields.PWT);
export const E_PCD = loMask(IA32E_ENTRY.fields.PCD);
export const E_A = loMask(IA32E_ENTRY.fields.A);
export const E_D = loMask(IA32E_ENTRY.fields.D);
export const E_PS = loMask(IA32E_ENTRY.fields.PS);
export const E_G = loMask(IA32E_ENTRY.fields.G);
export const E_EA = loMask(IA32E_ENTRY.fields.EA);
export const E_PAT_LARGE = loMask(IA32E_LARGE_ENTRY.fields.PAT);
export const EH_XD = hiMask(IA32E_ENTRY.fields.XD);
const E_ADDR = loMask(IA32E_ENTRY.fields.ADDR);
const EH_ADDR = hiMask(IA32E_ENTRY.fields.ADDR);

export interface ReservedMask {
  lo: number;
  hi: number;
}

/**
 * Reserved bits of a present entry (SDM 4.5.4 and Table 4-20 "reserved"):
 * address bits 51:MAXPHYADDR everywhere, XD without NXE, PS in PML5E/PML4E,
 * PS in a PDPTE without 1-GByte page support, and the address bits below a
 * large page's alignment (bits 29:13 or 20:13; bit 12 is its PAT).
 */
export function ia32eReserved(level: number, ps: boolean, maxPhysBits: number, nxe: boolean, page1G: boolean): ReservedMask {
  let lo = 0;
  let hi = maskBits(Math.max(0, maxPhysBits - 32), 20);
  if (!nxe) hi |= EH_XD;
  if (level >= 4) lo |= E_PS;
  if (level === 3 && ps) lo |= page1G ? maskBits(13, 30) : E_PS;
  if (level === 2 && ps) lo |= maskBits(13, 21);
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

/** Output address bits of an entry (the PAT bit of a large page is masked by the caller's alignment). */
export function ia32eAddr(lo: number, hi: number): number {
  return (hi & EH_ADDR) * 0x1_0000_0000 + ((lo & E_ADDR) >>> 0);
}

/** log2 of the span of one entry at `level` (4 KiB pages, 512 entries per table). */
export function ia32eShift(level: number): number {
  return 12 + 9 * (level - 1);
}
