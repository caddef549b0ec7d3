import { EBUSY, EINVAL, ENODEV, ENOSPC, EOVERFLOW } from '../uapi/errno.ts';
import type { Mm, MmuNotifier } from '../host/mm.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import type { Tracer } from '../trace/tracer.ts';
import type { IommuCore } from './core.ts';
import type { IommuDomain } from './domain.ts';
import type { IopfQueue } from './iopf.ts';
import type { PageRequest } from './types.ts';
import { young } from '../lib/young.ts';

/** One device bound to one mm (struct iommu_sva). */
export class SvaHandle {
  refs = 1;
  alive = true;
  constructor(
    readonly dev: PciFunction,
    readonly mm: Mm,
    readonly pasid: number,
    readonly domain: IommuDomain,
    readonly pid: number,
  ) {}
}

/** struct iommu_mm_data: what an mm carries once it has been bound (mm->iommu_mm). */
interface IommuMm {
  pasid: number;
  handles: SvaHandle[];
  /** iommu_mm->sva_domains, each holding the mm (mmgrab). */
  domains: IommuDomain[];
  /** The SVA domains' mmu_notifier (invalidate_range, release), registered while a domain exists. */
  notifier: MmuNotifier;
}

/** IOMMU_FIRST_GLOBAL_PASID: PASID 0 is IOMMU_NO_PASID. */
const FIRST_GLOBAL_PASID = 1;

/**
 * Shared Virtual Addressing (Linux iommu-sva.c), with its PASID lifetime:
 * - the first bind of an mm gives it a PASID from the global space, below
 *   the device's max_pasids (iommu_alloc_global_pasid: -ENOSPC when none is
 *   free there); a later bind to a device too narrow for it is -EOVERFLOW;
 * - the mm keeps that PASID until the mm itself is dropped (mm_pasid_drop
 *   from __mmdrop): unbinding, even the last bond, frees no PASID; every SVA
 *   domain holds the mm (mmgrab), so an exited process keeps its PASID
 *   while any bond remains;
 * - when the process exits, the mm release only stops translation on the
 *   PASIDs (the driver's notifier; IommuCore.svaMmReleased), the bonds stay
 *   until their owners unbind, and faults on them are answered Invalid;
 * so a device that keeps using an old PASID faults and never reaches
 * another process's memory.
 * Bonds are refcounted per device; SVA domains are shared per mm and IOMMU.
 */
export class SvaManager {
  private readonly byMm = new Map<Mm, IommuMm>();
  /** iommu_global_pasid_ida */
  private readonly usedPasids = new Set<number>();

  constructor(
    private readonly core: IommuCore,
    private readonly iopf: IopfQueue,
    private readonly tracer: Tracer,
  ) {}

  /** mm_get_enqcmd_pasid(): the PASID an mm holds, if it was ever bound and is not dropped yet. */
  pasidOf(mm: Mm): number | undefined {
    return this.byMm.get(mm)?.pasid;
  }

  /**
   * iommu_sva_bind_device(). The caller holds the mm's users (a dead mm is
   * -EINVAL). Returns the handle (the same one again, with a reference more,
   * for a repeated bind) or -errno; a PASID the mm got here stays with it.
   */
  bind(dev: PciFunction, mm: Mm, pid: number): SvaHandle | number {
    if (!mm.alive) return -EINVAL;
    const driver = this.core.driverOf(dev);
    if (driver === undefined) return -ENODEV;
    const st = this.allocMmData(mm, driver.maxPasids(dev));
    if (typeof st === 'number') return st;
    const existing = st.handles.find((h) => h.dev === dev && h.alive);
    if (existing !== undefined) {
      existing.refs++;
      return existing;
    }
    // Another domain already on this PASID of the device (not an SVA bond of this mm).
    const other = this.core.domainForPasid(dev, st.pasid);
    if (other !== undefined) return -EBUSY;
    const ie = driver.enableIopf?.(dev) ?? 0;
    if (ie < 0) return ie;
    let domain: IommuDomain | undefined;
    for (const d of st.domains) {
      if (this.core.attachDevicePasid(d, dev, st.pasid) === 0) {
        domain = d;
        break;
      }
    }
    if (domain === undefined) {
      const d = this.core.allocSva(dev, mm);
      if (typeof d === 'number') return d;
      d.iopfHandler = young((_dev, reqs, respond) => respond(this.resolve(mm, reqs) ? 'success' : 'invalid'));
      const r = this.core.attachDevicePasid(d, dev, st.pasid);
      if (r < 0) {
        d.free();
        return r;
      }
      if (st.domains.length === 0) mm.addNotifier(st.notifier);
      st.domains.push(d);
      domain = d;
    }
    const h = new SvaHandle(dev, mm, st.pasid, domain, pid);
    st.handles.push(h);
    this.tracer.trace('sva.bind', dev.bdf, { dev: dev.bdf, pid, pasid: st.pasid });
    return h;
  }

  /**
   * iommu_alloc_mm_data(): the mm's PASID, allocated on its first bind in
   * [1, max_pasids - 1] of the binding device and kept until the mm is
   * dropped. An mm whose PASID the device cannot carry is -EOVERFLOW.
   */
  private allocMmData(mm: Mm, maxPasids: number): IommuMm | number {
    const st = this.byMm.get(mm);
    if (st !== undefined) return st.pasid >= maxPasids ? -EOVERFLOW : st;
    let pasid = -1;
    for (let p = FIRST_GLOBAL_PASID; p < maxPasids; p++) {
      if (!this.usedPasids.has(p)) {
        pasid = p;
        break;
      }
    }
    if (pasid < 0) return -ENOSPC;
    this.usedPasids.add(pasid);
    const data: IommuMm = {
      pasid,
      handles: [],
      domains: [],
      notifier: {
        // The CPU page table changed: the IOMMUs walking it must drop what they cached.
        invalidateRange: () => {
          for (const d of data.domains) d.driver.flushIotlbAll?.();
        },
        // exit_mmap(): translation stops; the bonds stay until unbound.
        release: () => {
          for (const d of data.domains) this.core.svaMmReleased(d);
        },
      },
    };
    this.byMm.set(mm, data);
    mm.onDrop(() => this.pasidDrop(mm));
    return data;
  }

  /** iommu_sva_unbind_device(): drop a reference; the last one detaches the PASID (which the mm keeps). */
  unbind(h: SvaHandle): void {
    if (!h.alive) return;
    if (--h.refs > 0) return;
    h.alive = false;
    const st = this.byMm.get(h.mm)!;
    st.handles = st.handles.filter((x) => x !== h);
    this.iopf.flush(h.dev, h.pasid);
    this.core.detachDevicePasid(h.domain, h.dev, h.pasid);
    this.tracer.trace('sva.unbind', h.dev.bdf, { dev: h.dev.bdf, pid: h.pid, pasid: h.pasid });
    if (h.domain.users === 0) {
      st.domains = st.domains.filter((d) => d !== h.domain);
      if (st.domains.length === 0) h.mm.removeNotifier(st.notifier);
      // iommu_domain_free(): mmdrop, which may be the mm's last reference (then mm_pasid_drop).
      h.domain.free();
    }
  }

  /** mm_pasid_drop(), from __mmdrop: the PASID goes back to the global space. */
  private pasidDrop(mm: Mm): void {
    const st = this.byMm.get(mm);
    if (st === undefined) return;
    this.usedPasids.delete(st.pasid);
    this.byMm.delete(mm);
  }

  /** The SVA fault handler: fault every page of the group in on the mm, honouring the VMA's permissions. */
  private resolve(mm: Mm, reqs: readonly PageRequest[]): boolean {
    // iommu_sva_handle_mm(): no PASID, or an mm that has no users any more (mmget_not_zero), is Invalid.
    if (!mm.alive) return false;
    for (const r of reqs) {
      if (r.pasid < 0) return false;
      if (mm.faultIn(r.addr, r.write, r.exec) < 0) return false;
    }
    return true;
  }

  /** Live bonds (for invariants and tests). */
  handles(): SvaHandle[] {
    return [...this.byMm.values()].flatMap((s) => s.handles);
  }
}
