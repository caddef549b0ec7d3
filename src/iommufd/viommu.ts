/**
 * vIOMMU and vDEVICE objects (drivers/iommu/iommufd/viommu.c and the vIOMMU
 * parts of hw_pagetable.c): IOMMU_VIOMMU_ALLOC over a nest-parent paging
 * HWPT, IOMMU_VDEVICE_ALLOC binding a device to a virtual ID (an SMMUv3
 * vSID) in it, nested HWPTs allocated on a vIOMMU (IOMMU_HWPT_ALLOC with
 * pt_id = the vIOMMU) and the vIOMMU's cache invalidation
 * (IOMMU_HWPT_INVALIDATE with hwpt_id = the vIOMMU).
 *
 * Lifetimes: a vIOMMU holds its parent HWPT; vDEVICEs, nested HWPTs and
 * vEVENTQs (veventq.ts) hold the vIOMMU; so IOMMU_DESTROY of a parent or vIOMMU still in use is -EBUSY.
 * Unbinding a device destroys its vDEVICE (iommufd_device_pre_destroy); the
 * kernel then keeps the vDEVICE's ID as a tombstone until the fd closes,
 * here the ID is simply freed.
 */
import { EEXIST, EFAULT, EINVAL, EOPNOTSUPP, EOVERFLOW } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import { IommuDomain } from '../iommu-core/domain.ts';
import type { DriverViommu, IommuDriver } from '../iommu-core/types.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import { IOMMU_HW_QUEUE_TYPE_DEFAULT, IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_VIOMMU_TYPE_DEFAULT, type iommu_hw_queue_alloc, type iommu_hwpt_alloc, type iommu_vdevice_alloc, type iommu_viommu_alloc } from '../uapi/iommufd.ts';
import { U64_MAX } from '../uapi/struct.ts';
import type { StructView } from '../uapi/struct.ts';
import type { Respond } from './ioas.ts';
import { HwptNested, HwptPaging, IommufdDevice, IommufdObject, type IommufdCtx } from './objects.ts';
import { reportVevent, type VeventQueue } from './veventq.ts';
import { Attachment } from '../lib/attachment.ts';

type View<D> = D extends { fields: Readonly<Record<infer F extends string, unknown>> } ? StructView<F> : never;

/** struct iommufd_viommu */
export class Viommu extends IommufdObject {
  readonly type = 'viommu';
  /** virt_id -> vDEVICE (viommu->vdevs). */
  readonly vdevs = new Map<bigint, Vdevice>();
  /** IOMMU_VEVENTQ_TYPE_* -> its vEVENTQ, one per type (viommu->veventqs). */
  readonly veventqs = new Map<number, VeventQueue>();
  driver!: DriverViommu;

  constructor(
    readonly iommu: IommuDriver,
    readonly viommuType: number,
    readonly hwpt: HwptPaging,
  ) {
    super();
  }

  destroy(): void {
    this.driver.free();
    this.hwpt.refs--;
  }
}

/** struct iommufd_vdevice */
export class Vdevice extends IommufdObject {
  readonly type = 'vdevice';
  constructor(
    readonly viommu: Viommu,
    readonly idev: IommufdDevice,
    readonly virtId: bigint,
  ) {
    super();
  }

  destroy(): void {
    if (this.viommu.vdevs.get(this.virtId) === this) this.viommu.vdevs.delete(this.virtId);
    vdevOf.clear(this.idev);
    this.viommu.refs--;
  }
}

/** A nested HWPT allocated on a vIOMMU: it holds the vIOMMU rather than the parent (hwpt_nested->viommu). */
export class ViommuHwptNested extends HwptNested {
  constructor(
    domain: IommuDomain,
    readonly viommu: Viommu,
  ) {
    super(domain, viommu.hwpt);
  }

  override destroy(): void {
    this.viommu.refs--;
    if (this.fault !== undefined) this.fault.refs--;
    this.domain.free();
  }
}

/** idev->vdev */
const vdevOf = new Attachment<IommufdDevice, Vdevice>('vdevice');

/** iommufd_viommu_alloc_ioctl() */
export function viommuAlloc(ctx: IommufdCtx, v: View<typeof iommu_viommu_alloc>, respond: Respond): number {
  const type = v.num('type');
  if (v.num('flags') !== 0 || type === IOMMU_VIOMMU_TYPE_DEFAULT) return -EOPNOTSUPP;
  const idev = ctx.get<IommufdDevice>(v.num('dev_id'), 'device');
  if (typeof idev === 'number') return idev;
  const iommu = ctx.host.iommu.driverOf(idev.fn);
  if (iommu?.viommuAlloc === undefined || iommu.viommuSupported?.(idev.fn, type) !== true) return -EOPNOTSUPP;
  const hwpt = ctx.get<HwptPaging>(v.num('hwpt_id'), 'hwpt_paging');
  if (typeof hwpt === 'number') return hwpt;
  if (!hwpt.nestParent) return -EINVAL;
  // _iommufd_object_alloc_ucmd() comes before ops->viommu_init().
  const fa = ctx.allocFails('viommu');
  if (fa < 0) return fa;
  const viommu = new Viommu(iommu, type, hwpt);
  const d = iommu.viommuAlloc(idev.fn, hwpt.domain.driver, type, {
    findDev: (virtId) => viommu.vdevs.get(BigInt(virtId))?.idev.fn,
    virtIdOf: (fn: PciFunction) => {
      for (const vd of viommu.vdevs.values()) if (vd.idev.fn === fn) return Number(vd.virtId);
      return undefined;
    },
    reportEvent: (evType, data) => reportVevent(viommu, evType, data),
  });
  if (typeof d === 'number') return d;
  viommu.driver = d;
  hwpt.refs++;
  ctx.add(viommu);
  v.setNum('out_viommu_id', viommu.id);
  const r = respond();
  if (r < 0) ctx.remove(viommu);
  return r;
}

/** iommufd_vdevice_alloc_ioctl() */
export function vdeviceAlloc(ctx: IommufdCtx, v: View<typeof iommu_vdevice_alloc>, respond: Respond): number {
  const virtId = v.big('virt_id'); // an unsigned long index: every u64 fits on a 64-bit kernel
  const viommu = ctx.get<Viommu>(v.num('viommu_id'), 'viommu');
  if (typeof viommu === 'number') return viommu;
  const idev = ctx.get<IommufdDevice>(v.num('dev_id'), 'device');
  if (typeof idev === 'number') return idev;
  if (ctx.host.iommu.driverOf(idev.fn) !== viommu.iommu) return -EINVAL;
  if (vdevOf.has(idev)) return -EEXIST;
  // _iommufd_object_alloc() comes before the virt_id's xa_insert() (-EBUSY, answered -EEXIST).
  const fa = ctx.allocFails('vdevice');
  if (fa < 0) return fa;
  if (viommu.vdevs.has(virtId)) return -EEXIST;
  const vdev = ctx.add(new Vdevice(viommu, idev, virtId));
  viommu.refs++;
  viommu.vdevs.set(virtId, vdev);
  vdevOf.set(idev, vdev);
  v.setNum('out_vdevice_id', vdev.id);
  const r = respond();
  if (r < 0) ctx.remove(vdev);
  return r;
}

/** iommufd_device_pre_destroy(): a device going away takes its vDEVICE with it. */
export function destroyVdeviceOf(idev: IommufdDevice): void {
  const vdev = vdevOf.get(idev);
  if (vdev !== undefined) idev.ctx.remove(vdev);
}

/**
 * iommufd_viommu_alloc_hwpt_nested(): only FAULT_ID_VALID and ALLOC_PASID among the flags,
 * vendor data required (-EOPNOTSUPP), the device behind the same IOMMU as
 * the vIOMMU (-EINVAL); the driver checks the data.
 */
export function viommuHwptAlloc(
  ctx: IommufdCtx, idev: IommufdDevice, viommu: Viommu, v: StructView<keyof typeof iommu_hwpt_alloc.fields>, proc: Process,
): ViommuHwptNested | number {
  if (ctx.host.iommu.driverOf(idev.fn) !== viommu.iommu) return -EINVAL;
  const flags = v.num('flags');
  if ((flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)) !== 0) return -EOPNOTSUPP;
  const len = v.num('data_len');
  if (len === 0) return -EOPNOTSUPP;
  const data = proc.copyFromUser(v.big('data_uptr'), len);
  if (typeof data === 'number') return -EFAULT;
  // __iommufd_object_alloc() comes before ops->alloc_domain_nested().
  const fa = ctx.allocFails('hwpt_nested');
  if (fa < 0) return fa;
  const d = viommu.driver.allocDomainNested(idev.fn, flags & ~IOMMU_HWPT_FAULT_ID_VALID, v.num('data_type'), data);
  if (typeof d === 'number') return d;
  viommu.refs++;
  return ctx.add(new ViommuHwptNested(new IommuDomain(d), viommu));
}

type HwQueueView = StructView<keyof typeof iommu_hw_queue_alloc.fields>;

/**
 * iommufd_hw_queue_alloc_ioctl(): flags or IOMMU_HW_QUEUE_TYPE_DEFAULT
 * -EOPNOTSUPP, length 0 -EINVAL, base + length wrapping -EOVERFLOW, not a
 * vIOMMU -ENOENT, a vIOMMU without a queue of that type -EOPNOTSUPP. No
 * emulated IOMMU has hardware queues (the Tegra241 CMDQV extension of SMMUv3
 * is not modelled), so nothing gets past that.
 */
export function hwQueueAlloc(ctx: IommufdCtx, v: HwQueueView): number {
  if (v.num('flags') !== 0 || v.num('type') === IOMMU_HW_QUEUE_TYPE_DEFAULT) return -EOPNOTSUPP;
  const length = v.big('length');
  if (length === 0n) return -EINVAL;
  if (v.big('nesting_parent_iova') + length - 1n > U64_MAX) return -EOVERFLOW;
  const viommu = ctx.get<Viommu>(v.num('viommu_id'), 'viommu');
  if (typeof viommu === 'number') return viommu;
  if ((viommu.driver.hwQueueSize?.(v.num('type')) ?? 0) === 0) return -EOPNOTSUPP;
  // A driver with hardware queues would pin the guest queue (iommufd_hw_queue_alloc_phys) here.
  return -EOPNOTSUPP;
}
