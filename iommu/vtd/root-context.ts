/**
 * Root and context entries (VT-d spec §9.1 - §9.4), declared as layouts.
 * Legacy mode (RTADDR.TTM = 00): a 4 KiB root table of 256 16-byte root
 * entries (one per bus), each pointing to a context table of 256 16-byte
 * context entries (one per devfn). Scalable mode (TTM = 01): each root entry
 * has a lower and an upper context-table pointer (devfn 0-127 / 128-255),
 * and context entries are 32 bytes.
 */
import { defineLayout, getBits, type Layout } from '../../src/hw/layout.ts';

/** §9.1 Root Entry (legacy). */
export const ROOT_ENTRY = defineLayout('ROOT_ENTRY', 16, [
  ['P', 0],
  ['CTP', 63, 12],
] as const);

/** §9.2 Scalable-Mode Root Entry. */
export const SM_ROOT_ENTRY = defineLayout('SM_ROOT_ENTRY', 16, [
  ['LP', 0],
  ['LCTP', 63, 12],
  ['UP', 64],
  ['UCTP', 127, 76],
] as const);

/**
 * §9.3 Context Entry (legacy). TT: 00 second-stage for untranslated
 * requests only, 01 also device-TLB (needs ECAP.DT), 10 pass-through (needs
 * ECAP.PT), 11 reserved. AW: 1 = 39-bit 3-level, 2 = 48-bit 4-level, 3 =
 * 57-bit 5-level (must be in CAP.SAGAW). AVAIL is software's.
 */
export const CONTEXT_ENTRY = defineLayout('CONTEXT_ENTRY', 16, [
  ['P', 0],
  ['FPD', 1],
  ['TT', 3, 2],
  ['SLPTPTR', 63, 12],
  ['AW', 66, 64],
  ['AVAIL', 70, 67],
  ['DID', 87, 72],
] as const);

/**
 * §9.4 Scalable-Mode Context Entry. PDTS: the PASID directory has 2^(PDTS+7)
 * entries. RID_PASID: the PASID used for requests without PASID (ECAP.RPS);
 * RID_PRIV: their privilege (ECAP.RPRIVS). DTE/PRE need ECAP.DT/PRS.
 */
export const SM_CONTEXT_ENTRY = defineLayout('SM_CONTEXT_ENTRY', 32, [
  ['P', 0],
  ['FPD', 1],
  ['DTE', 2],
  ['PASIDE', 3],
  ['PRE', 4],
  ['PDTS', 11, 9],
  ['PASIDDIRPTR', 63, 12],
  ['RID_PASID', 83, 64],
  ['RID_PRIV', 84],
] as const);

/** Legacy context-entry TT values. */
export const TT_UNTRANSLATED = 0;
export const TT_DEVICE_TLB = 1;
export const TT_PASSTHROUGH = 2;

/** True when a set bit of `words` belongs to no field of `layout` (allocation-free). */
export function hasReservedBits(layout: Layout, words: ArrayLike<number>): boolean {
  const m = layout.reservedMask;
  for (let i = 0; i < m.length; i++) if (((words[i]! & m[i]!) >>> 0) !== 0) return true;
  return false;
}

/**
 * True when a 64-bit pointer whose high half is `hi` has bits at or above
 * `haw` set (those bits are reserved in every table pointer).
 */
export function aboveHaw(hi: number, haw: number): boolean {
  return haw < 64 && haw >= 32 && hi >>> (haw - 32) !== 0;
}

/** The 4 KiB-aligned address in bits 63:12 of the qword held in words [i, i+1] (bits above 52 ignored). */
export function ptrAt(words: ArrayLike<number>, i: number): number {
  return (words[i + 1]! & 0xfffff) * 0x1_0000_0000 + ((words[i]! & 0xfffff000) >>> 0);
}

/** Read a field of an entry held as u32 words. */
export function entryField(words: ArrayLike<number>, layout: Layout, name: string): number {
  const f = layout.fields[name];
  if (f === undefined) throw new Error(`${layout.name} has no field ${name}`);
  return getBits(words, f);
}
