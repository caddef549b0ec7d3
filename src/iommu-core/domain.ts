import { IotlbGather } from './io-pgtable.ts';
import type { Mm } from '../host/mm.ts';
import { EINVAL, EOPNOTSUPP } from '../uapi/errno.ts';
import type { IopfHandler } from './iopf.ts';
import type { DomainType, DriverDomain } from './types.ts';

/**
 * An IOMMU domain as the core sees it (struct iommu_domain): the driver's
 * domain plus what the core keeps about it: who owns it, its fault handler,
 * the mm of an SVA domain, and the map/unmap rules of iommu.c that are the
 * same for every driver (page-size splitting, alignment, unwinding a map
 * that fails part-way, gathered invalidation).
 */
export class IommuDomain {
  readonly type: DomainType;
  readonly driver: DriverDomain;
  private handler: IopfHandler | undefined;
  /** The process address space of an SVA domain. */
  readonly mm: Mm | undefined;
  /** Devices and PASIDs attached (for refcounting and teardown). */
  users = 0;
  /** SVA domain whose mm was released: its PASIDs no longer translate (core.svaMmReleased). */
  mmReleased = false;
  /** Map calls made to the driver (one per page-size run), for figures like vfio.map1g.2m.map_calls. */
  mapCalls = 0;
  private freed = false;

  constructor(driver: DriverDomain, mm?: Mm) {
    this.type = driver.type;
    this.driver = driver;
    this.mm = mm;
  }

  /** domain->iopf_handler; the driver's domain sees whether it is set (DriverDomain.hasIopfHandler). */
  get iopfHandler(): IopfHandler | undefined {
    return this.handler;
  }

  set iopfHandler(h: IopfHandler | undefined) {
    this.handler = h;
    this.driver.hasIopfHandler = h !== undefined;
  }

  get isPaging(): boolean {
    return this.type === 'paging' && this.driver.mapPages !== undefined;
  }

  get minPageSize(): number {
    return this.driver.pgsizes[0] ?? 0;
  }

  /**
   * iommu_map(): map [iova, iova+size) to pa with the largest pages that
   * alignment allows. Everything must be aligned to the smallest page size.
   * A failure part-way unmaps what this call mapped and returns the errno.
   */
  map(iova: number, pa: number, size: number, prot: number): number {
    if (!this.isPaging || this.freed) return -EOPNOTSUPP;
    const min = this.minPageSize;
    if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(pa) || !Number.isSafeInteger(size) || size <= 0) return -EINVAL;
    if (iova % min !== 0 || pa % min !== 0 || size % min !== 0) return -EINVAL;
    let mapped = 0;
    while (mapped < size) {
      const [pgsize, count] = this.pickPageSize(iova + mapped, pa + mapped, size - mapped);
      this.mapCalls++;
      const r = this.driver.mapPages!(iova + mapped, pa + mapped, pgsize, count, prot);
      mapped += r.mapped;
      if (r.err < 0) {
        if (mapped > 0) this.unmap(iova, mapped);
        return r.err;
      }
      if (r.mapped === 0) {
        if (mapped > 0) this.unmap(iova, mapped);
        return -EINVAL;
      }
    }
    return 0;
  }

  /** iommu_pgsize(): the largest page size that fits alignment and length, and how many of it. */
  private pickPageSize(iova: number, pa: number, size: number): [number, number] {
    const sizes = this.driver.pgsizes;
    let best = sizes[0]!;
    for (const s of sizes) if (s <= size && iova % s === 0 && pa % s === 0) best = s;
    // Stop the run where a larger page would become possible, so it is used there.
    let count = Math.floor(size / best);
    for (const s of sizes) {
      if (s <= best) continue;
      const toBoundary = (s - (iova % s)) % s;
      if (toBoundary > 0 && (iova + toBoundary) % s === 0 && (pa + toBoundary) % s === 0 && size - toBoundary >= s) {
        count = Math.min(count, toBoundary / best);
      }
    }
    return [best, Math.max(1, count)];
  }

  /**
   * iommu_unmap(): unmap from `iova` until `size` is covered or nothing more
   * is mapped; returns bytes unmapped (leaves are removed whole). The IOTLB is
   * invalidated before this returns.
   */
  unmap(iova: number, size: number): number {
    if (!this.isPaging || this.freed || this.driver.unmapPages === undefined) return 0;
    const min = this.minPageSize;
    if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(size) || size <= 0 || iova % min !== 0 || size % min !== 0) return 0;
    const gather = new IotlbGather();
    let unmapped = 0;
    while (unmapped < size) {
      const [pgsize, count] = this.pickPageSize(iova + unmapped, iova + unmapped, size - unmapped);
      const n = this.driver.unmapPages(iova + unmapped, pgsize, count, gather);
      if (n === 0) break;
      unmapped += n;
    }
    if (!gather.empty) this.driver.iotlbSync?.(gather);
    return unmapped;
  }

  iovaToPhys(iova: number): number {
    if (this.type === 'identity') return iova;
    return this.driver.iovaToPhys?.(iova) ?? -1;
  }

  /** iommu_domain_free(): an SVA domain lets go of its mm (mmdrop), which may drop it. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.driver.free();
    if (this.type === 'sva') this.mm?.drop();
  }

  get isFreed(): boolean {
    return this.freed;
  }
}
