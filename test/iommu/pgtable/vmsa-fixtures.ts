/** Hand-built VMSAv8-64 descriptor bits (Arm ARM D8.3) and helpers for the walker tests. */
import type { PageTableWalker } from '../../../iommu/pgtable/types.ts';
import { WalkResult } from '../../../iommu/pgtable/types.ts';
import { bit } from './helpers.ts';

export const TABLE = 3n; // valid + type: table below level 3, page at level 3
export const BLOCK = 1n;
export const PAGE = 3n;
export const AF = bit(10);
export const AP1 = bit(6);
export const AP2 = bit(7);
export const NG = bit(11);
export const DBM = bit(51);
export const PXN = bit(53);
export const UXN = bit(54);
export const APTABLE0 = bit(61);
export const APTABLE1 = bit(62);
export const S2R = bit(6);
export const S2W = bit(7);

/** Index of `va` at Arm `level` for a granule of 2^pageShift bytes (start tables may hold `entries`). */
export function idx(va: number, level: number, pageShift = 12, entries?: number): number {
  const stride = pageShift - 3;
  const shift = pageShift + (3 - level) * stride;
  return Math.floor(va / 2 ** shift) % (entries ?? 2 ** stride);
}

export function walkOnce(w: PageTableWalker, va: number, access: number): WalkResult {
  const r = new WalkResult();
  w.walk(va, access, r);
  return r;
}
