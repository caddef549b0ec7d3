/**
 * Root and context entries (VT-d spec §9.1 - §9.4), declared as layouts.
 * Legacy mode (RTADDR.TTM = 00): a 4 KiB root table of 256 16-byte root
 * entries (one per bus), each pointing to a context table of 256 16-byte
 * context entries (one per devfn). Scalable mode (TTM = 01): each root entry
 * has a lower and an upper context-table pointer (devfn 0-127 / 128-255),
 * and context entries are 32 bytes.
 */
import { defineLayout, fieldGet, readField, type FieldTable } from '../../src/hw/layout.ts';

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

/**
 * A table pointer field (address bits 63:12 of its qword, 4 KiB aligned) as
 * an address; bits above 51 are not address bits and are dropped.
 */
export function tablePtr<F extends string>(layout: FieldTable<F>, words: ArrayLike<number>, name: NoInfer<F>): number {
  return (readField(layout, words, name) % 2 ** (52 - 12)) * 4096;
}

/** A table pointer with bits at or above `haw` set (those bits are reserved in every table pointer). */
export function ptrAboveHaw<F extends string>(layout: FieldTable<F>, words: ArrayLike<number>, name: NoInfer<F>, haw: number): boolean {
  return readField(layout, words, name) >= 2 ** (haw - 12);
}

/** A source-id (§3.4.1): the root table is indexed by its bus, a context table by its devfn. */
export const SOURCE_ID = defineLayout('SOURCE_ID', 2, [['DEVFN', 7, 0], ['BUS', 15, 8]]);

export function sidBus(sid: number): number {
  return fieldGet(SOURCE_ID.fields.BUS, sid);
}

export function sidDevfn(sid: number): number {
  return fieldGet(SOURCE_ID.fields.DEVFN, sid);
}

/** Scalable mode: devfn 0-127 use the lower context table of a root entry, 128-255 the upper (§9.2). */
export const SM_CONTEXT_TABLE_ENTRIES = 128;
