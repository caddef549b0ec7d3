import type { PinnedPages } from '../host/pin.ts';
import type { Process } from '../host/process.ts';
import type { Mm } from '../host/mm.ts';
import { EBUSY, EINVAL, EIO, ENOMEM } from '../uapi/errno.ts';
import type { IommuDomain } from '../iommu-core/domain.ts';
import type { IommuGroup } from '../iommu-core/group.ts';
import type { IommuDriver } from '../iommu-core/types.ts';
import { IOMMU_CACHE } from '../iommu-core/io-pgtable.ts';
import { DmaTree } from './dma-tree.ts';
import { injectedErrno } from './faults.ts';
import { aperResize, constraining, resvExclude, type IovaRange } from './iova-list.ts';
import type { VfioModule } from './module.ts';
import { setMsiCookie } from './msi-cookie.ts';
import { SvaBonds } from './sva-bind.ts';
import { removeDma } from './dma-map.ts';

export const PAGE = 4096;
/** PAGE_MASK as a 64-bit bitmap: every page size from 4 KiB up. */
const PAGE_MASK = 0xffff_ffff_ffff_f000n;
const U64 = 0xffff_ffff_ffff_ffffn;

/** A physically contiguous run mapped with one iommu_map() call per domain. */
export interface DmaRun {
  iova: number;
  pa: number;
  size: number;
  /**
   * Device memory from a VM_PFNMAP area (a BAR mmap, for peer-to-peer DMA):
   * invalid/reserved pfns (is_invalid_reserved_pfn), mapped but neither
   * pinned nor charged to locked memory, and never merged with RAM pages.
   */
  mmio?: boolean;
}

/** struct vfio_dma: one user mapping. */
export interface VfioDma {
  iova: number;
  size: number;
  vaddr: number;
  /** IOMMU_READ / IOMMU_WRITE. */
  prot: number;
  /** Whose locked memory the pages count against (dma->task / dma->mm). */
  owner: Process;
  /** The mm the pages were pinned in (they are unpinned against it). */
  pinMm: Mm;
  lockedPages: number;
  pins: PinnedPages[];
  runs: DmaRun[];
  vaddrInvalid: boolean;
  /** A dirty bitmap is allocated (dirty tracking was on when it was mapped or started). */
  bitmap: boolean;
}

/** A group as type1 sees it: the IOMMU group and the owner that claimed its DMA. */
export interface Type1Group {
  readonly iommuGroup: IommuGroup;
  readonly owner: object;
}

/** struct vfio_domain. */
export interface VfioDomain {
  readonly domain: IommuDomain;
  readonly driver: IommuDriver;
  readonly groups: Type1Group[];
  /** The domain snoops CPU caches (domain->enforce_cache_coherency, asked once at attach). */
  readonly enforceCacheCoherency: boolean;
}

/**
 * The type1 IOMMU backend of one container (struct vfio_iommu of
 * drivers/vfio/vfio_iommu_type1.c): its domains and the groups attached to
 * each, the DMA list, the valid IOVA ranges, the page-size bitmap, the DMA
 * entry budget, dirty tracking and the SVA bonds. Map/unmap live in
 * dma-map.ts, dirty bitmaps in dirty.ts, ioctl decoding in type1-ioctl.ts.
 */
export class VfioIommu {
  readonly domains: VfioDomain[] = [];
  readonly dmas = new DmaTree<VfioDma>();
  iovaList: IovaRange[] = [];
  dmaAvail: number;
  vaddrInvalidCount = 0;
  pgsizeBitmap = PAGE_MASK;
  dirtyTracking = false;
  /** Groups whose devices may dirty memory without telling us (all of them: there are no mdevs). */
  numNonPinnedGroups = 0;
  released = false;
  readonly sva: SvaBonds;

  constructor(
    readonly mod: VfioModule,
    readonly v2: boolean,
  ) {
    this.dmaAvail = mod.dmaEntryLimit;
    this.sva = new SvaBonds(this);
  }

  get host() {
    return this.mod.host;
  }

  /** The smallest supported IOMMU page size (1 << __ffs(pgsize_bitmap)). */
  get minPageSize(): number {
    const b = this.pgsizeBitmap;
    return Number(b & -b);
  }

  /** vfio_domains_have_enforce_cache_coherency(): every domain snoops (true with no domain at all). */
  haveEnforceCacheCoherency(): boolean {
    return this.domains.every((d) => d.enforceCacheCoherency);
  }

  groups(): Type1Group[] {
    return this.domains.flatMap((d) => d.groups);
  }

  findGroup(iommuGroup: IommuGroup): Type1Group | undefined {
    for (const d of this.domains) for (const g of d.groups) if (g.iommuGroup === iommuGroup) return g;
    return undefined;
  }

  /** Largest IOVA the emulator can address (inside, IOVAs are numbers). */
  static readonly IOVA_LIMIT = Number.MAX_SAFE_INTEGER;

  // --- attach ------------------------------------------------------------------

  /** vfio_iommu_type1_attach_group(). 0 or -errno; on error nothing changed. */
  attachGroup(g: Type1Group): number {
    if (this.vaddrInvalidCount > 0) return -EBUSY;
    if (this.findGroup(g.iommuGroup) !== undefined) return -EINVAL;
    const core = this.host.iommu;
    const group = g.iommuGroup;
    const first = group.devices[0];
    if (first === undefined) return -EIO;
    if (injectedErrno(this.host.platform.faults, 'vfio.group_alloc', ENOMEM, { group: group.id }) < 0) return -ENOMEM;
    if (injectedErrno(this.host.platform.faults, 'vfio.domain_alloc', EIO, { group: group.id }) < 0) return -EIO;
    const allocated = core.allocPaging(first);
    if (typeof allocated === 'number') return -EIO;
    const domain = allocated;
    let r = core.attachGroup(domain, group, g.owner);
    if (r < 0) {
      domain.free();
      return r;
    }
    const fail = (err: number, attached: IommuDomain | undefined): number => {
      if (attached !== undefined) core.detachGroup(attached, group, g.owner);
      domain.free();
      return err;
    };
    const geo = domain.driver.geometry;
    const apStart = geo.apertureStart;
    const apEnd = Math.min(geo.apertureEnd, VfioIommu.IOVA_LIMIT);
    if (this.aperConflict(apStart, apEnd)) return fail(-EINVAL, domain);
    const resv = core.groupResvRegions(group);
    for (const rr of constraining(resv)) if (this.dmas.find(rr.start, rr.length) !== undefined) return fail(-EINVAL, domain);
    const iovaCopy = resvExclude(aperResize(this.iovaList, apStart, apEnd), resv);
    if (iovaCopy.length === 0) return fail(-EINVAL, domain);
    const swMsi = resv.some((x) => x.type === 'msi') ? undefined : resv.find((x) => x.type === 'sw-msi');
    // vfio_iommu_type1_attach_group(): no-snoop is blocked where the domain can do it, before any mapping.
    const cc = domain.driver.enforceCacheCoherency?.() ?? false;

    // Try to join an existing domain of the same IOMMU driver and the same coherency.
    for (const d of this.domains) {
      if (d.driver !== group.driver || d.enforceCacheCoherency !== cc) continue;
      core.detachGroup(domain, group, g.owner);
      if (core.attachGroup(d.domain, group, g.owner) === 0) {
        const b = this.sva.replayBind(g);
        if (b < 0) return fail(b, d.domain);
        d.groups.push(g);
        domain.free();
        return this.attached(g, d, iovaCopy);
      }
      r = core.attachGroup(domain, group, g.owner);
      if (r < 0) return fail(r, undefined);
    }

    r = this.replay(domain);
    if (r < 0) return fail(r, domain);
    r = this.sva.replayBind(g);
    if (r < 0) {
      this.unmapAllRuns(domain);
      return fail(r, domain);
    }
    if (swMsi !== undefined) setMsiCookie(domain, swMsi.start, swMsi.length);
    const vd: VfioDomain = { domain, driver: group.driver, groups: [g], enforceCacheCoherency: cc };
    this.domains.unshift(vd);
    this.updatePgsizeBitmap();
    return this.attached(g, vd, iovaCopy);
  }

  private attached(g: Type1Group, d: VfioDomain, iovaCopy: IovaRange[]): number {
    this.iovaList = iovaCopy;
    this.numNonPinnedGroups++;
    this.host.platform.tracer.trace('vfio.attach', 'vfio', { group: g.iommuGroup.id, domains: this.domains.length, shared: d.groups.length > 1 });
    return 0;
  }

  /** vfio_iommu_aper_conflict(): the new aperture misses the list, or existing mappings fall outside it. */
  private aperConflict(start: number, end: number): boolean {
    const list = this.iovaList;
    if (list.length === 0) return false;
    const first = list[0]!;
    const last = list[list.length - 1]!;
    if (start > last.end || end < first.start) return true;
    if (start > first.start && this.dmas.find(first.start, start - first.start) !== undefined) return true;
    if (end < last.end && this.dmas.find(end + 1, last.end - end) !== undefined) return true;
    return false;
  }

  /** vfio_iommu_replay(): map every existing DMA range into a new domain; all or nothing. */
  private replay(domain: IommuDomain): number {
    for (const dma of this.dmas) {
      for (const run of dma.runs) {
        let r = injectedErrno(this.host.platform.faults, 'vfio.replay', ENOMEM, { iova: run.iova });
        if (r === 0) {
          this.mod.counters.mapCalls.value++;
          r = domain.map(run.iova, run.pa, run.size, dma.prot | IOMMU_CACHE);
        }
        if (r < 0) {
          this.unmapAllRuns(domain);
          return r;
        }
      }
    }
    return 0;
  }

  /** Remove every DMA run from one domain (unwinding a replay). */
  private unmapAllRuns(domain: IommuDomain): void {
    for (const dma of this.dmas) for (const run of dma.runs) domain.unmap(run.iova, run.size);
  }

  /** vfio_update_pgsize_bitmap(): what every domain supports, sub-page sizes folded into PAGE_SIZE. */
  private updatePgsizeBitmap(): void {
    let b = U64;
    for (const d of this.domains) {
      let m = 0n;
      for (const s of d.domain.driver.pgsizes) m |= BigInt(s);
      b &= m;
    }
    if ((b & ~PAGE_MASK & U64) !== 0n) b = (b & PAGE_MASK) | BigInt(PAGE);
    this.pgsizeBitmap = b;
  }

  // --- detach and release --------------------------------------------------------

  /** vfio_iommu_type1_detach_group(). */
  detachGroup(iommuGroup: IommuGroup): void {
    const core = this.host.iommu;
    const idx = this.domains.findIndex((d) => d.groups.some((g) => g.iommuGroup === iommuGroup));
    if (idx < 0) return;
    const d = this.domains[idx]!;
    const g = d.groups.find((x) => x.iommuGroup === iommuGroup)!;
    this.sva.unbindGroup(g);
    core.detachGroup(d.domain, iommuGroup, g.owner);
    d.groups.splice(d.groups.indexOf(g), 1);
    if (d.groups.length === 0) {
      if (this.domains.length === 1) {
        this.unmapUnpinAll();
        this.sva.freeAll();
      }
      d.domain.free();
      this.domains.splice(idx, 1);
      this.updatePgsizeBitmap();
    }
    this.refreshIovaList();
    this.numNonPinnedGroups--;
    this.host.platform.tracer.trace('vfio.detach', 'vfio', { group: iommuGroup.id, domains: this.domains.length });
  }

  /** vfio_iommu_aper_expand() + vfio_iommu_resv_refresh(): recompute the list from what remains. */
  private refreshIovaList(): void {
    if (this.domains.length === 0) {
      this.iovaList = [];
      return;
    }
    let start = 0;
    let end = VfioIommu.IOVA_LIMIT;
    for (const d of this.domains) {
      start = Math.max(start, d.domain.driver.geometry.apertureStart);
      end = Math.min(end, d.domain.driver.geometry.apertureEnd);
    }
    const resv = this.groups().flatMap((g) => this.host.iommu.groupResvRegions(g.iommuGroup));
    const list = resvExclude([{ start, end }], resv);
    if (list.length > 0) this.iovaList = list;
  }

  /** vfio_iommu_unmap_unpin_all(). */
  unmapUnpinAll(): void {
    for (let dma = this.dmas.first(); dma !== undefined; dma = this.dmas.first()) removeDma(this, dma);
  }

  /** vfio_iommu_type1_release(): the container lets go of everything. */
  release(): void {
    if (this.released) return;
    this.sva.freeAll();
    this.unmapUnpinAll();
    const core = this.host.iommu;
    for (const d of this.domains) {
      for (const g of d.groups) core.detachGroup(d.domain, g.iommuGroup, g.owner);
      d.domain.free();
    }
    this.domains.length = 0;
    this.iovaList = [];
    this.released = true;
  }
}
