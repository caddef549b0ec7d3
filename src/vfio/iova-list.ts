import type { ResvRegion } from '../iommu-core/types.ts';

/** One valid IOVA range, inclusive at both ends (struct vfio_iova). */
export interface IovaRange {
  start: number;
  end: number;
}

/**
 * The container's valid IOVA list (vfio_iommu.iova_list): the aperture of
 * its domains minus the groups' reserved regions. Pure functions over
 * sorted, disjoint lists, so a failed attach can keep the old list.
 */

/** vfio_iommu_aper_resize(): clip the list to [start, end] (an empty list becomes that range). */
export function aperResize(list: readonly IovaRange[], start: number, end: number): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  const out: IovaRange[] = [];
  for (const n of list) {
    if (n.end < start || n.start > end) continue;
    out.push({ start: Math.max(n.start, start), end: Math.min(n.end, end) });
  }
  return out;
}

/** Reserved regions that constrain IOVAs: all but IOMMU_RESV_DIRECT_RELAXABLE. */
export function constraining(resv: readonly ResvRegion[]): ResvRegion[] {
  return resv.filter((r) => r.type !== 'direct-relaxable' && r.length > 0);
}

/** vfio_iommu_resv_exclude(): cut every reserved region out; an empty result is -EINVAL for the caller. */
export function resvExclude(list: readonly IovaRange[], resv: readonly ResvRegion[]): IovaRange[] {
  let cur = list.map((n) => ({ ...n }));
  for (const r of constraining(resv)) {
    const rs = r.start;
    const re = r.start + r.length - 1;
    const next: IovaRange[] = [];
    for (const n of cur) {
      if (rs > n.end || re < n.start) {
        next.push(n);
        continue;
      }
      if (rs > n.start) next.push({ start: n.start, end: rs - 1 });
      if (re < n.end) next.push({ start: re + 1, end: n.end });
    }
    cur = next;
  }
  return cur;
}

/** vfio_iommu_iova_dma_valid(): [start, end] lies inside one range (an empty list allows everything). */
export function iovaValid(list: readonly IovaRange[], start: number, end: number): boolean {
  if (list.length === 0) return true;
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const n = list[mid]!;
    if (start < n.start) hi = mid - 1;
    else if (start > n.end) lo = mid + 1;
    else return end <= n.end;
  }
  return false;
}
