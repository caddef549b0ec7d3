import { EINVAL, EOVERFLOW } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import { VFIO_DMA_UNMAP_FLAG_ALL, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, VFIO_DMA_UNMAP_FLAG_VADDR } from '../uapi/vfio.ts';
import { probeBitmap, writeDmaBits } from './dirty.ts';
import { removeDma } from './dma-map.ts';
import type { VfioDma, VfioIommu } from './type1.ts';

const U64_MAX = (1n << 64n) - 1n;
const SAFE = Number.MAX_SAFE_INTEGER;

export interface UnmapBitmap {
  pgsize: bigint;
  /** User address of the u64 words. */
  data: number;
}

/**
 * vfio_dma_do_unmap(). Returns the errno (0 on success) and the size
 * unmapped (or invalidated, for VADDR), which the ioctl copies back only on
 * success.
 *
 * v1 (VFIO_TYPE1_IOMMU) keeps the original granularity rule: a request that
 * starts inside a mapping unmaps nothing and succeeds, one covering a
 * mapping's first IOVA unmaps all of it. v2 refuses a range that bisects a
 * mapping (-EINVAL) and otherwise unmaps every mapping inside it.
 */
export function doUnmap(iommu: VfioIommu, proc: Process, flags: number, iova: bigint, size: bigint, bitmap?: UnmapBitmap): [number, number] {
  const unmapAll = (flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
  const invalidateVaddr = (flags & VFIO_DMA_UNMAP_FLAG_VADDR) !== 0;
  const wantBitmap = (flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
  const pgsize = iommu.minPageSize;
  const mask = BigInt(pgsize - 1);
  if ((iova & mask) !== 0n) return [-EINVAL, 0];
  if (unmapAll) {
    if (iova !== 0n || size !== 0n) return [-EINVAL, 0];
    size = U64_MAX;
  } else {
    if (size === 0n || (size & mask) !== 0n) return [-EINVAL, 0];
    // check_add_overflow(iova, size - 1, &iova_end)
    if (iova + size - 1n > U64_MAX) return [-EOVERFLOW, 0];
  }
  if (wantBitmap && (!iommu.dirtyTracking || bitmap === undefined || bitmap.pgsize !== BigInt(pgsize))) return [-EINVAL, 0];
  // Mappings live below 2^53; clip the range there for lookups.
  if (iova > BigInt(SAFE)) return [0, 0];
  const start = Number(iova);
  const endBig = iova + size;
  const end = endBig > BigInt(SAFE) ? SAFE : Number(endBig);
  const exactEnd = endBig <= BigInt(SAFE);

  if (iommu.v2 && !unmapAll) {
    const head = iommu.dmas.find(start, 1);
    if (head !== undefined && head.iova !== start) return [-EINVAL, 0];
    if (exactEnd) {
      const tail = iommu.dmas.find(end - 1, 0);
      if (tail !== undefined && tail.iova + tail.size !== end) return [-EINVAL, 0];
    }
  }

  // Collect the mappings the loop will visit, in order.
  const list: VfioDma[] = [];
  for (let d = iommu.dmas.firstEndingAfter(start); d !== undefined; d = iommu.dmas.next(d)) {
    if (d.iova >= end) break;
    if (!iommu.v2 && start > d.iova) break;
    list.push(d);
  }

  if (invalidateVaddr) {
    // All or nothing: an already invalid vaddr in the range undoes this call's invalidations.
    if (list.some((d) => d.vaddrInvalid)) return [-EINVAL, 0];
    let unmapped = 0;
    for (const d of list) {
      d.vaddrInvalid = true;
      iommu.vaddrInvalidCount++;
      unmapped += d.size;
    }
    return [0, unmapped];
  }

  if (wantBitmap) {
    const p = probeBitmap(proc, bitmap!.data, list, start, pgsize);
    if (p < 0) return [p, 0];
    for (const d of list) {
      const r = writeDmaBits(iommu, proc, bitmap!.data, start, d, pgsize);
      if (r < 0) return [r, 0];
    }
  }
  let unmapped = 0;
  for (const d of list) {
    unmapped += d.size;
    removeDma(iommu, d);
  }
  return [0, unmapped];
}
