/**
 * Scalable-mode PASID structures (VT-d spec §9.5 PASID Directory Entry,
 * §9.6 PASID Table Entry). A PASID selects a directory entry with bits
 * 19:6 (the directory is 4 KiB-aligned, 2^(PDTS+7) 8-byte entries) and an
 * entry of a 4 KiB PASID table with bits 5:0 (64 entries of 64 bytes).
 */
import { defineLayout, fieldGet } from '../../src/hw/layout.ts';

/** §9.5 Scalable-Mode PASID Directory Entry. */
export const PASID_DIR_ENTRY = defineLayout('PASID_DIR_ENTRY', 8, [
  ['P', 0],
  ['FPD', 1],
  ['SMPTBLPTR', 63, 12],
] as const);

/**
 * §9.6 Scalable-Mode PASID Table Entry (512 bits). Bits are numbered across
 * the entry: qword 0 is bits 63:0, qword 1 bits 127:64, qword 2 bits
 * 191:128. Bits 511:192 are reserved, as are 139:136 and the pre-3.0 NXE /
 * SMEP positions 133 and 134 (this unit implements neither). CD, EMTE, EMT,
 * PWT, PCD and PAT are accepted and ignored (memory types are not modelled).
 */
export const PASID_ENTRY = defineLayout('PASID_ENTRY', 64, [
  ['P', 0],
  ['FPD', 1],
  /** Second-stage AW: 1 = 3-level, 2 = 4-level, 3 = 5-level. */
  ['AW', 4, 2],
  /** Second-stage execute enable. */
  ['SLEE', 5],
  /** PASID-granular translation type, PGTT_* below. */
  ['PGTT', 8, 6],
  /** Second-stage accessed/dirty enable (ECAP.SLADS). */
  ['SLADE', 9],
  ['SLPTPTR', 63, 12],
  ['DID', 79, 64],
  ['PWSNP', 87],
  ['PGSNP', 88],
  ['CD', 89],
  ['EMTE', 90],
  ['EMT', 93, 91],
  ['PWT', 94],
  ['PCD', 95],
  ['PAT', 127, 96],
  /** Supervisor requests enable (ECAP.SRS). */
  ['SRE', 128],
  /** Execute requests enable (ECAP.ERS). */
  ['ERE', 129],
  /** First-stage paging mode: 00 4-level, 01 5-level (CAP.FL5LP), 1x reserved. */
  ['FLPM', 131, 130],
  /** Write-protect enable: supervisor writes honour R/W (CR0.WP). */
  ['WPE', 132],
  /** Extended-accessed flag enable (ECAP.EAFS). */
  ['EAFE', 135],
  ['FSPTPTR', 191, 140],
] as const);

/** PGTT values (§9.6). 0, 5, 6, 7 are reserved. */
export const PGTT_FIRST_STAGE = 1;
export const PGTT_SECOND_STAGE = 2;
export const PGTT_NESTED = 3;
export const PGTT_PASSTHROUGH = 4;

export const PGTT_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: 'first-stage',
  2: 'second-stage',
  3: 'nested',
  4: 'pass-through',
});

/** A PASID as the scalable-mode walk splits it (§3.4.3): PASID table index in bits 5:0, directory index in bits 19:6. */
export const PASID_INDEX = defineLayout('PASID', 4, [['TABLE', 5, 0], ['DIR', 19, 6]]);
const DIR = PASID_INDEX.fields.DIR;
const TABLE = PASID_INDEX.fields.TABLE;

/** Split a PASID into its directory index and its table index. */
export function pasidDirIndex(pasid: number): number {
  return fieldGet(DIR, pasid);
}
export function pasidTableIndex(pasid: number): number {
  return fieldGet(TABLE, pasid);
}

/** Directory entries that PASIDs of `bits` bits need (one per 64 PASIDs, at least one). */
export function pasidDirEntries(bits: number): number {
  return Math.max(1, 2 ** (bits - DIR.lsb));
}
