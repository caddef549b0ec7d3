import { EINVAL, ENODEV, ENOSPC, EOPNOTSUPP } from '../uapi/errno.ts';
import type { Mm, MmuNotifier } from '../host/mm.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import type { Tracer } from '../trace/tracer.ts';
import type { IommuCore } from './core.ts';
import type { IommuDomain } from './domain.ts';
import type { IopfQueue } from './iopf.ts';
import type { PageRequest } from './types.ts';

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

interface MmSvaState {
  pasid: number;
  handles: SvaHandle[];
  domains: IommuDomain[];
  notifier: MmuNotifier;
}

/** PASID 0 is RID_PASID on VT-d and "no SSID" habits elsewhere; global PASIDs start at 1. */
const FIRST_PASID = 1;

/**
 * Shared Virtual Addressing (Linux iommu-sva.c): a process's mm bound to
 * devices under one PASID from a global space (the same PASID on every
 * device), refcounted binds, SVA domains shared per mm and IOMMU, faults
 * resolved on the mm, and teardown when the mm exits: its PASIDs are
 * detached and outstanding faults answered.
 */
export class SvaManager {
  private readonly byMm = new Map<Mm, MmSvaState>();
  private readonly usedPasids = new Set<number>();

  constructor(
    private readonly core: IommuCore,
    private readonly iopf: IopfQueue,
    private readonly tracer: Tracer,
    /** Size of the global PASID space (the smallest max_pasids of the IOMMUs is what matters per device). */
    private readonly pasidSpace = 1 << 20,
  ) {}

  /** The PASID an mm holds, if bound anywhere. */
  pasidOf(mm: Mm): number | undefined {
    return this.byMm.get(mm)?.pasid;
  }

  /** iommu_sva_bind_device(). Returns the handle (the same one again for a repeated bind) or -errno. */
  bind(dev: PciFunction, mm: Mm, pid: number): SvaHandle | number {
    if (!mm.alive) return -EINVAL;
    const driver = this.core.driverOf(dev);
    if (driver === undefined) return -ENODEV;
    let st = this.byMm.get(mm);
    const existing = st?.handles.find((h) => h.dev === dev && h.alive);
    if (existing !== undefined) {
      existing.refs++;
      return existing;
    }
    let fresh = false;
    if (st === undefined) {
      const pasid = this.allocPasid();
      if (pasid < 0) return pasid;
      const notifier: MmuNotifier = {
        // The CPU page table changed: the IOMMUs walking it must drop what they cached.
        invalidateRange: () => {
          for (const d of this.byMm.get(mm)?.domains ?? []) d.driver.flushIotlbAll?.();
        },
        release: () => this.mmExit(mm),
      };
      st = { pasid, handles: [], domains: [], notifier };
      this.byMm.set(mm, st);
      mm.addNotifier(notifier);
      fresh = true;
    }
    if (st.pasid >= driver.maxPasids(dev)) return this.undo(mm, fresh, -EOPNOTSUPP);
    const ie = driver.enableIopf?.(dev) ?? 0;
    if (ie < 0) return this.undo(mm, fresh, ie);
    let domain: IommuDomain | undefined;
    let allocated = false;
    for (const d of st.domains) {
      if (this.core.attachDevicePasid(d, dev, st.pasid) === 0) {
        domain = d;
        break;
      }
    }
    if (domain === undefined) {
      const d = this.core.allocSva(dev, mm);
      if (typeof d === 'number') return this.undo(mm, fresh, d);
      d.iopfHandler = (_dev, reqs, respond) => respond(this.resolve(mm, reqs) ? 'success' : 'invalid');
      const r = this.core.attachDevicePasid(d, dev, st.pasid);
      if (r < 0) {
        d.free();
        return this.undo(mm, fresh, r);
      }
      domain = d;
      allocated = true;
    }
    if (allocated) st.domains.push(domain);
    const h = new SvaHandle(dev, mm, st.pasid, domain, pid);
    st.handles.push(h);
    this.tracer.trace('sva.bind', dev.bdf, { dev: dev.bdf, pid, pasid: st.pasid });
    return h;
  }

  private undo(mm: Mm, fresh: boolean, err: number): number {
    if (fresh) this.dropMm(mm);
    return err;
  }

  /** iommu_sva_unbind_device(): drop a reference; the last one detaches the PASID. */
  unbind(h: SvaHandle): void {
    if (!h.alive) return;
    if (--h.refs > 0) return;
    this.detach(h);
    const st = this.byMm.get(h.mm);
    if (st !== undefined && st.handles.length === 0) this.dropMm(h.mm);
  }

  private detach(h: SvaHandle): void {
    h.alive = false;
    this.iopf.flush(h.dev, h.pasid);
    this.core.detachDevicePasid(h.domain, h.dev, h.pasid);
    this.tracer.trace('sva.unbind', h.dev.bdf, { dev: h.dev.bdf, pid: h.pid, pasid: h.pasid });
    const st = this.byMm.get(h.mm);
    if (st === undefined) return;
    st.handles = st.handles.filter((x) => x !== h);
    if (h.domain.users === 0) {
      st.domains = st.domains.filter((d) => d !== h.domain);
      h.domain.free();
    }
  }

  private dropMm(mm: Mm): void {
    const st = this.byMm.get(mm);
    if (st === undefined) return;
    for (const h of [...st.handles]) this.detach(h);
    for (const d of st.domains) if (!d.isFreed) d.free();
    mm.removeNotifier(st.notifier);
    this.usedPasids.delete(st.pasid);
    this.byMm.delete(mm);
  }

  /** The mm is going away: every bond ends now; later unbinds are no-ops. */
  private mmExit(mm: Mm): void {
    this.dropMm(mm);
  }

  private allocPasid(): number {
    for (let p = FIRST_PASID; p < this.pasidSpace; p++) {
      if (!this.usedPasids.has(p)) {
        this.usedPasids.add(p);
        return p;
      }
    }
    return -ENOSPC;
  }

  /** The SVA fault handler: fault every page of the group in on the mm, honouring the VMA's permissions. */
  private resolve(mm: Mm, reqs: readonly PageRequest[]): boolean {
    for (const r of reqs) {
      if (mm.faultIn(r.addr, r.write, r.exec) < 0) return false;
    }
    return true;
  }

  /** Live bonds (for invariants and tests). */
  handles(): SvaHandle[] {
    return [...this.byMm.values()].flatMap((s) => s.handles);
  }
}
