import { EINVAL, ENOMEM, EPERM, ESRCH } from '../uapi/errno.ts';
import type { Mm } from '../host/mm.ts';
import type { Process } from '../host/process.ts';
import type { SvaHandle } from '../iommu-core/sva.ts';
import { injectedErrno } from './faults.ts';
import type { Type1Group, VfioIommu } from './type1.ts';

/** struct vfio_mm of the SVA proposal: one process address space bound to the container. */
interface VfioMm {
  mm: Mm;
  pid: number;
  pasid: number;
  /** The bonds, per group (one device per group). */
  handles: Map<Type1Group, SvaHandle[]>;
}

/**
 * VFIO_IOMMU_BIND / VFIO_IOMMU_UNBIND with VFIO_IOMMU_BIND_PROCESS, as the
 * SVA proposal ("vfio: Add support for Shared Virtual Addressing") defines
 * them: a process address space is bound to every device of the container
 * under one PASID; binding the same mm again returns that PASID; groups
 * attached later get every bond replayed; multi-device groups are refused;
 * the bond ends on UNBIND, on container release, or when its group leaves.
 * The proposal's mm_exit callback is gone from the IOMMU API (Linux 5.8's
 * iommu-sva rework): when the process exits, the IOMMU core only stops
 * translation on its PASID, and the bond stays here until one of those.
 */
export class SvaBonds {
  private mms: VfioMm[] = [];

  constructor(private readonly iommu: VfioIommu) {}

  get count(): number {
    return this.mms.length;
  }

  /**
   * vfio_iommu_get_mm_by_vpid(): the target of BIND_PID, with the ptrace
   * attach check (same uid, or uid 0): -ESRCH for no such live process,
   * -EPERM when the caller may not ptrace it.
   */
  targetOf(caller: Process, usePid: boolean, pid: number): Process | number {
    if (!usePid) return caller.alive ? caller : -EINVAL;
    const target = this.iommu.host.processes.get(pid);
    if (target === undefined || !target.alive) return -ESRCH;
    if (caller.uid !== 0 && caller.uid !== target.uid) return -EPERM;
    return target;
  }

  /** vfio_iommu_type1_bind_process(): the PASID, or -errno with nothing bound. */
  bind(target: Process): number {
    const iommu = this.iommu;
    if (iommu.domains.length === 0) return -EINVAL;
    const existing = this.mms.find((m) => m.mm === target.mm);
    if (existing !== undefined) return existing.pasid;
    if (injectedErrno(iommu.host.platform.faults, 'vfio.sva_bind', ENOMEM, { pid: target.pid }) < 0) return -ENOMEM;
    const vm: VfioMm = { mm: target.mm, pid: target.pid, pasid: -1, handles: new Map() };
    for (const g of iommu.groups()) {
      const r = this.bindGroup(g, vm);
      if (r < 0) {
        this.unbindAllGroups(vm);
        return r;
      }
    }
    this.mms.push(vm);
    iommu.host.platform.tracer.trace('vfio.bind', 'vfio', { pid: vm.pid, pasid: vm.pasid });
    return vm.pasid;
  }

  isBound(target: Process): boolean {
    return this.mms.some((m) => m.mm === target.mm);
  }

  /** vfio_iommu_type1_unbind_process(): 0, or -ESRCH when the mm is not bound here. */
  unbind(target: Process): number {
    const vm = this.mms.find((m) => m.mm === target.mm);
    if (vm === undefined) return -ESRCH;
    this.drop(vm);
    return 0;
  }

  /** vfio_iommu_bind_group(): bind the group's only device; more than one device is -EINVAL. */
  private bindGroup(g: Type1Group, vm: VfioMm): number {
    const devices = g.iommuGroup.devices;
    if (devices.length !== 1) return -EINVAL;
    const h = this.iommu.host.sva.bind(devices[0]!, vm.mm, vm.pid);
    if (typeof h === 'number') return h;
    vm.pasid = h.pasid;
    vm.handles.set(g, [h]);
    return 0;
  }

  private unbindGroup1(g: Type1Group, vm: VfioMm): void {
    for (const h of vm.handles.get(g) ?? []) this.iommu.host.sva.unbind(h);
    vm.handles.delete(g);
  }

  private unbindAllGroups(vm: VfioMm): void {
    for (const g of [...vm.handles.keys()]) this.unbindGroup1(g, vm);
  }

  /** vfio_iommu_replay_bind(): a group joining the container gets every bond; all or nothing. */
  replayBind(g: Type1Group): number {
    const done: VfioMm[] = [];
    for (const vm of this.mms) {
      if (!vm.mm.alive) continue;
      const r = this.bindGroup(g, vm);
      if (r < 0) {
        for (const d of done) this.unbindGroup1(g, d);
        return r;
      }
      done.push(vm);
    }
    return 0;
  }

  /** A group leaves the container: its devices' bonds go, the vfio_mm entries stay. */
  unbindGroup(g: Type1Group): void {
    for (const vm of this.mms) this.unbindGroup1(g, vm);
  }

  /** vfio_iommu_free_all_mm(): every bond goes. */
  freeAll(): void {
    for (const vm of [...this.mms]) this.drop(vm);
  }

  private drop(vm: VfioMm): void {
    this.unbindAllGroups(vm);
    this.mms = this.mms.filter((m) => m !== vm);
    this.iommu.host.platform.tracer.trace('vfio.unbind', 'vfio', { pid: vm.pid, pasid: vm.pasid });
  }

  /** PASIDs bound now (tests and invariants). */
  pasids(): number[] {
    return this.mms.map((m) => m.pasid);
  }
}
