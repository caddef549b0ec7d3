/**
 * The io-pgtable vocabulary the host side shares with the page-table formats
 * (the role of include/linux/io-pgtable.h and the IOMMU_* prot bits of
 * include/linux/iommu.h): what the IOMMU core, VFIO, iommufd and the CPU's
 * mm ask of a page-table builder, and what an unmap gathers for the
 * driver's invalidation. It lives on the ground floor because the host uses
 * it; the formats in iommu/pgtable implement it.
 */

/** Linux `IOMMU_*` prot bits (include/linux/iommu.h values). */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const IOMMU_CACHE = 4;
export const IOMMU_NOEXEC = 8;
export const IOMMU_MMIO = 16;
export const IOMMU_PRIV = 32;

/**
 * Source of table pages in guest physical memory; the host's page allocator
 * implements it. Pages come back zeroed and aligned to their size.
 */
export interface TablePageAllocator {
  /** `bytes` is a power of two (64 B .. 1 MiB); undefined when out of memory. */
  alloc(bytes: number): number | undefined;
  free(pa: number, bytes: number): void;
}

export interface BuilderStats {
  /** Leaf descriptors written by map(), ever. */
  leafWrites: number;
  /** Leaf descriptors cleared by unmap(), ever. */
  leafClears: number;
  /** Leaf descriptors present now. */
  leaves: number;
  /** Table pages in use now (the root included). */
  tablePages: number;
  tableBytes: number;
}

/**
 * What an unmap touched, for the driver's invalidation (Linux
 * iommu_iotlb_gather). Table pages emptied by the unmap are parked here, not
 * freed, when a gather is passed: the walk caches may still point at them
 * until the driver has invalidated, and only then calls releaseGathered().
 */
export class IotlbGather {
  start = Infinity;
  end = 0;
  /** Smallest leaf size removed (invalidation granule). */
  pgsize = 0;
  /** True when table descriptors were removed: walk caches need invalidating too. */
  tablesRemoved = false;
  /** Parked table pages: [pa0, bytes0, pa1, bytes1, ...]. */
  readonly freed: number[] = [];

  add(iova: number, size: number): void {
    if (iova < this.start) this.start = iova;
    if (iova + size > this.end) this.end = iova + size;
    if (this.pgsize === 0 || size < this.pgsize) this.pgsize = size;
  }

  get empty(): boolean {
    return this.end === 0 && this.freed.length === 0;
  }
}

export interface PageTableBuilder {
  readonly format: string;
  /** Physical address of the root table (TTB / SLPTPTR / FSPTPTR / CR3). */
  readonly root: number;
  /** Bit n set ⇔ 2^n-byte leaves are used (a number: 4T = 2^42 exceeds 32-bit ops; use pgsizes). */
  readonly pgsizeBitmap: number;
  readonly pgsizes: readonly number[];
  readonly stats: Readonly<BuilderStats>;
  /** 0, or a negative errno with the tables unchanged. */
  map(iova: number, pa: number, size: number, prot: number): number;
  /**
   * Remove the leaves from `iova` on until `size` is covered or a hole is
   * met; returns bytes unmapped counted from `iova` (a leaf is removed whole,
   * so this can exceed `size`); 0 when nothing is mapped at `iova` or the
   * arguments are bad.
   */
  unmap(iova: number, size: number, gather?: IotlbGather): number;
  /** Physical address `iova` maps to, or -1. */
  iovaToPhys(iova: number): number;
  /** Free table pages parked in `gather` (after the driver's invalidation). */
  releaseGathered(gather: IotlbGather): void;
  /** Free every table page, the root included; the builder is unusable after. */
  destroy(): void;
}

/** The size list of a page-size bitmap, ascending. */
export function pgsizesOf(bitmap: number): number[] {
  const out: number[] = [];
  for (let s = 1, b = bitmap; b > 0; s *= 2, b = Math.floor(b / 2)) {
    if (b % 2 === 1) out.push(s);
  }
  return out;
}
