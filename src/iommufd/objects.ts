/**
 * iommufd objects and the context that owns them (main.c's object table):
 * IDs come from the lowest free slot starting at 1, as the kernel's
 * XA_FLAGS_ALLOC1 xarray hands them out; `refs` counts holders other than
 * the table (an HWPT on its IOAS, a device on its HWPT, an fd on its fault
 * queue), and IOMMU_DESTROY is refused (-EBUSY) while any remain.
 */
import { ENOENT, ENOMEM } from '../uapi/errno.ts';
import type { FaultInjector } from '../fault/injector.ts';
import { injectedErrno } from './points.ts';
import type { Host } from '../host/host.ts';
import type { IommuDomain } from '../iommu-core/domain.ts';
import type { IommuGroup } from '../iommu-core/group.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import type { VfioDeviceFile } from '../vfio/device-file.ts';
import type { FaultQueue } from './fault.ts';
import { IoPagetable } from './io-pagetable.ts';
import type { AccountMode } from './pages.ts';

export type ObjType = 'ioas' | 'hwpt_paging' | 'hwpt_nested' | 'device' | 'fault' | 'viommu' | 'vdevice' | 'veventq';

export abstract class IommufdObject {
  id = 0;
  refs = 0;
  abstract readonly type: ObjType;
  /** Release what the object holds; called once, when refs is 0. */
  abstract destroy(): void;
}

export class Ioas extends IommufdObject {
  readonly type = 'ioas';
  readonly iopt: IoPagetable;
  constructor(faults?: FaultInjector) {
    super();
    this.iopt = new IoPagetable(faults);
  }
  /** Paging HWPTs built on this IOAS (ioas->hwpt_list). */
  readonly hwpts: HwptPaging[] = [];
  destroy(): void {
    this.iopt.unmapAll();
  }
}

export abstract class Hwpt extends IommufdObject {
  abstract readonly domain: IommuDomain;
  fault: FaultQueue | undefined;
  /**
   * Allocated with IOMMU_HWPT_ALLOC_PASID (hwpt->pasid_compat): only such a
   * HWPT takes PASIDs, and the RID must sit on one while PASIDs are attached.
   */
  pasidCompat = false;
  /** The IOAS whose reserved ranges attached devices must respect. */
  abstract get ioas(): Ioas;
}

export class HwptPaging extends Hwpt {
  readonly type = 'hwpt_paging';
  /** hwpt_paging->enforce_cache_coherency: the domain enforces coherency (set at allocation). */
  enforceCacheCoherency = false;
  constructor(
    readonly ctx: IommufdCtx,
    readonly domain: IommuDomain,
    readonly ioasObj: Ioas,
    /** Created by an attach to an IOAS; destroyed when its last device leaves. */
    readonly auto: boolean,
    readonly nestParent: boolean,
    readonly dirtyTracking: boolean,
  ) {
    super();
  }
  get ioas(): Ioas {
    return this.ioasObj;
  }
  destroy(): void {
    this.ioasObj.iopt.removeDomain(this.domain);
    const i = this.ioasObj.hwpts.indexOf(this);
    if (i >= 0) this.ioasObj.hwpts.splice(i, 1);
    this.ioasObj.refs--;
    if (this.fault !== undefined) this.fault.refs--;
    this.domain.free();
  }
}

export class HwptNested extends Hwpt {
  readonly type = 'hwpt_nested';
  constructor(
    readonly domain: IommuDomain,
    readonly parent: HwptPaging,
  ) {
    super();
  }
  get ioas(): Ioas {
    return this.parent.ioas;
  }
  destroy(): void {
    this.parent.refs--;
    if (this.fault !== undefined) this.fault.refs--;
    this.domain.free();
  }
}

/** A device bound to the context through its VFIO cdev (struct iommufd_device). */
export class IommufdDevice extends IommufdObject {
  readonly type = 'device';
  /** The HWPT the RID is attached to. */
  attached: Hwpt | undefined;
  readonly pasids = new Map<number, Hwpt>();
  constructor(
    readonly ctx: IommufdCtx,
    readonly file: VfioDeviceFile,
    readonly fn: PciFunction,
    readonly group: IommuGroup,
  ) {
    super();
  }
  destroy(): void {}
}

/**
 * One iommufd context (struct iommufd_ctx): the object table, the
 * accounting mode, the VFIO compat IOAS. It lives while /dev/iommu fds,
 * bound devices or fault queue fds refer to it.
 */
export class IommufdCtx {
  readonly objects = new Map<number, IommufdObject>();
  accountMode: AccountMode = 'user';
  vfioIoas: Ioas | undefined;
  private holders = 1;
  private lowestFree = 1;

  constructor(readonly host: Host) {}

  /** iommufd_object_alloc()'s allocation step: -ENOMEM when the 'iommufd.object_alloc' point fails it, else 0. */
  allocFails(what: string): number {
    return injectedErrno(this.host.platform.faults, 'iommufd.object_alloc', ENOMEM, { object: what });
  }

  /** xa_alloc() into the table: the lowest free ID from 1. */
  add<T extends IommufdObject>(obj: T): T {
    let id = this.lowestFree;
    while (this.objects.has(id)) id++;
    obj.id = id;
    this.objects.set(id, obj);
    this.lowestFree = id + 1;
    return obj;
  }

  /** Drop an object from the table and release it (refs must be 0). */
  remove(obj: IommufdObject): void {
    if (this.objects.get(obj.id) !== obj) return;
    this.objects.delete(obj.id);
    if (obj.id < this.lowestFree) this.lowestFree = obj.id;
    if (this.vfioIoas === obj) this.vfioIoas = undefined;
    obj.destroy();
  }

  /** iommufd_get_object(): the object with this ID and one of these types, or -ENOENT. */
  get<T extends IommufdObject>(id: number, ...types: ObjType[]): T | number {
    const o = this.objects.get(id);
    if (o === undefined || (types.length > 0 && !types.includes(o.type))) return -ENOENT;
    return o as T;
  }

  hold(): void {
    this.holders++;
  }

  /** The last holder is gone: destroy every object, dependants first (iommufd_fops_release). */
  put(): void {
    if (--this.holders > 0) return;
    for (let pass = 0; this.objects.size > 0 && pass < 8; pass++) {
      for (const o of [...this.objects.values()].sort((a, b) => b.id - a.id)) if (o.refs === 0) this.remove(o);
    }
  }
}
