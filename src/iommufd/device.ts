/**
 * Devices and hardware page tables (drivers/iommu/iommufd/device.c,
 * hw_pagetable.c): bind through the VFIO cdev, attach a device's RID (or a
 * PASID) to an IOAS (through an automatic paging HWPT, shared by devices
 * that can use it) or to a HWPT, HWPT_ALLOC, GET_HW_INFO.
 */
import { EBUSY, EFAULT, EINVAL, ENODEV, ENOMEM, EOPNOTSUPP } from '../uapi/errno.ts';
import { injectedErrno } from './points.ts';
import type { Process } from '../host/process.ts';
import { IOMMU_HW_INFO_FLAG_INPUT_TYPE, IOMMU_HW_INFO_TYPE_DEFAULT, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_HW_CAP_DIRTY_TRACKING, type iommu_hw_info, type iommu_hwpt_alloc } from '../uapi/iommufd.ts';
import type { StructView } from '../uapi/struct.ts';
import type { VfioDeviceFile } from '../vfio/device-file.ts';
import { setMsiCookie } from '../vfio/msi-cookie.ts';
import type { FaultQueue } from './fault.ts';
import { destroyVdeviceOf, Viommu, viommuHwptAlloc } from './viommu.ts';
import { Hwpt, HwptNested, HwptPaging, Ioas, IommufdDevice, type IommufdCtx } from './objects.ts';

type Respond = () => number;

/** iommufd_device_bind(): claim DMA ownership of the group for the context; the device gets an ID. */
export function bindDevice(ctx: IommufdCtx, file: VfioDeviceFile): IommufdDevice | number {
  const fn = file.dev.fn;
  const group = ctx.host.iommu.groupOf(fn);
  if (group === undefined) return -ENODEV;
  const fail = ctx.allocFails('device');
  if (fail < 0) return fail;
  const r = ctx.host.iommu.claimDmaOwner(group, ctx);
  if (r < 0) return r;
  const dev = ctx.add(new IommufdDevice(ctx, file, fn, group));
  dev.refs++; // the VFIO driver holds it until unbind: IOMMU_DESTROY sees -EBUSY
  ctx.hold();
  return dev;
}

export function unbindDevice(dev: IommufdDevice): void {
  const ctx = dev.ctx;
  destroyVdeviceOf(dev);
  for (const pasid of [...dev.pasids.keys()]) detachDevice(dev, pasid);
  detachDevice(dev);
  ctx.host.iommu.releaseDmaOwner(dev.group, ctx);
  dev.refs--;
  ctx.remove(dev);
  ctx.put();
}

/** Device IDs as fault records report them. */
function devIdOf(ctx: IommufdCtx) {
  return (fn: unknown): number => {
    for (const o of ctx.objects.values()) if (o instanceof IommufdDevice && o.fn === fn) return o.id;
    return 0;
  };
}

function installFault(ctx: IommufdCtx, hwpt: Hwpt, fault: FaultQueue): void {
  hwpt.fault = fault;
  fault.refs++;
  hwpt.domain.iopfHandler = fault.handler(devIdOf(ctx));
}

/** Allocate a paging HWPT on an IOAS for a device and mirror the IOAS into it. */
function allocPaging(ctx: IommufdCtx, dev: IommufdDevice, ioas: Ioas, flags: number, auto: boolean): HwptPaging | number {
  const fail = ctx.allocFails('hwpt_paging');
  if (fail < 0) return fail;
  if (injectedErrno(ctx.host.platform.faults, 'iommufd.domain_alloc', ENOMEM, { dev: dev.fn.bdf }) < 0) return -ENOMEM;
  const d = ctx.host.iommu.allocPaging(dev.fn, {
    nestParent: (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0,
    dirtyTracking: (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0,
    pasid: (flags & IOMMU_HWPT_ALLOC_PASID) !== 0,
  });
  if (typeof d === 'number') return d;
  // iommufd_hwpt_paging_enforce_cc(), before anything is mapped, for a device whose IOMMU can
  // (idev->enforce_cache_coherency = IOMMU_CAP_ENFORCE_CACHE_COHERENCY); a refusal is -EINVAL.
  let cc = false;
  if (ctx.host.iommu.driverOf(dev.fn)?.enforceCacheCoherencyCapable?.(dev.fn) === true) {
    cc = d.driver.enforceCacheCoherency?.() ?? false;
    if (!cc) {
      d.free();
      return -EINVAL;
    }
  }
  const r = ioas.iopt.addDomain(d);
  if (r < 0) {
    d.free();
    return r;
  }
  const hwpt = new HwptPaging(ctx, d, ioas, auto, (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0, (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0);
  hwpt.enforceCacheCoherency = cc;
  ioas.refs++;
  ioas.hwpts.push(hwpt);
  return ctx.add(hwpt);
}

/** Attach the RID (pasid undefined) or a PASID of a device to an IOAS or HWPT; returns the HWPT ID. */
export function attachDevice(dev: IommufdDevice, ptId: number, pasid?: number, replace = true): number {
  const ctx = dev.ctx;
  // iommufd_device_change_pt(): the lookup takes any type (-ENOENT for no object); a type that is not an
  // IOAS or HWPT is -EINVAL.
  const pt = ctx.get(ptId);
  if (typeof pt === 'number') return pt;
  if (pt.type !== 'ioas' && pt.type !== 'hwpt_paging' && pt.type !== 'hwpt_nested') return -EINVAL;
  // iommufd_device_attach (not _replace) on a device already attached at that PASID: iommufd_hw_pagetable_attach's
  // xa_insert of the device into the attach's device_array fails -EBUSY, whatever the target.
  if (!replace && (pasid === undefined ? dev.attached : dev.pasids.get(pasid)) !== undefined) return -EBUSY;
  if (pt instanceof Ioas) {
    // Try the automatic HWPTs already on this IOAS, then make a new one.
    for (const h of pt.hwpts) {
      if (!h.auto) continue;
      const r = attachHwpt(dev, h, pasid);
      if (r === -EINVAL) continue;
      return r < 0 ? r : h.id;
    }
    // iommufd_device_auto_get_domain(): the automatic HWPT is allocated with flags 0, so it is never
    // PASID-compatible and a PASID cannot attach to an IOAS.
    const h = allocPaging(ctx, dev, pt, 0, true);
    if (typeof h === 'number') return h;
    const r = attachHwpt(dev, h, pasid);
    if (r < 0) {
      ctx.remove(h);
      return r;
    }
    return h.id;
  }
  const r = attachHwpt(dev, pt as Hwpt, pasid);
  return r < 0 ? r : pt.id;
}

/**
 * The other devices of `dev`'s IOMMU group in this context whose RID is attached (struct
 * iommufd_group's device_array): the group is attached once, for its first device, and the
 * others follow that attachment (iommufd_hw_pagetable_attach).
 */
function groupPeers(dev: IommufdDevice): IommufdDevice[] {
  const out: IommufdDevice[] = [];
  for (const o of dev.ctx.objects.values()) {
    if (o instanceof IommufdDevice && o !== dev && o.group === dev.group && o.attached !== undefined) out.push(o);
  }
  return out;
}

/**
 * iommufd_hwpt_pasid_compat(): a PASID needs a HWPT allocated with
 * IOMMU_HWPT_ALLOC_PASID and a RID (if attached) on such a HWPT; the RID may
 * go onto a HWPT without it only while no PASID of its group is attached.
 */
function pasidCompat(dev: IommufdDevice, hwpt: Hwpt, pasid: number | undefined): number {
  if (pasid === undefined) {
    if (hwpt.pasidCompat) return 0;
    for (const o of dev.ctx.objects.values()) if (o instanceof IommufdDevice && o.group === dev.group && o.pasids.size > 0) return -EINVAL;
    return 0;
  }
  if (!hwpt.pasidCompat) return -EINVAL;
  const rid = dev.attached ?? groupPeers(dev)[0]?.attached;
  return rid !== undefined && !rid.pasidCompat ? -EINVAL : 0;
}

function attachHwpt(dev: IommufdDevice, hwpt: Hwpt, pasid?: number): number {
  const core = dev.ctx.host.iommu;
  const old = pasid === undefined ? dev.attached : dev.pasids.get(pasid);
  if (old === hwpt) return 0;
  const peers = pasid === undefined ? groupPeers(dev) : [];
  // A group already attached elsewhere takes a new device only onto the same HWPT.
  if (old === undefined && peers.length > 0 && peers[0]!.attached !== hwpt) return -EINVAL;
  const iopt = hwpt.ioas.iopt;
  const sameIoas = old !== undefined && old.ioas === hwpt.ioas;
  // Replacing moves the whole group (iommufd_group_do_replace_reserved_iova): every member's regions.
  const reserving = sameIoas ? [] : old === undefined ? [dev] : [dev, ...peers];
  for (const [i, d] of reserving.entries()) {
    const r = iopt.enforceResvRegions(core.resvRegions(d.fn), d);
    if (r < 0) {
      for (const u of reserving.slice(0, i)) iopt.unreserve(u);
      return r;
    }
  }
  // iommufd_group_setup_msi(): an IOMMU_RESV_SW_MSI region asks for an MSI cookie on the paging
  // domain, so the doorbell can be mapped into the window when the device's MSIs are set up.
  if (hwpt instanceof HwptPaging && pasid === undefined) {
    const sw = core.resvRegions(dev.fn).find((x) => x.type === 'sw-msi');
    if (sw !== undefined) setMsiCookie(hwpt.domain, sw.start, sw.length);
  }
  let r = pasidCompat(dev, hwpt, pasid);
  if (r < 0) {
    for (const u of reserving) iopt.unreserve(u);
    return r;
  }
  if (pasid === undefined) {
    if (old !== undefined) r = core.replaceGroupDomain(hwpt.domain, dev.group, dev.ctx);
    else r = peers.length > 0 ? 0 : core.attachGroup(hwpt.domain, dev.group, dev.ctx);
  } else {
    if (old !== undefined) core.detachDevicePasid(old.domain, dev.fn, pasid);
    r = core.attachDevicePasid(hwpt.domain, dev.fn, pasid);
    if (r < 0 && old !== undefined) core.attachDevicePasid(old.domain, dev.fn, pasid);
  }
  if (r < 0) {
    for (const u of reserving) iopt.unreserve(u);
    return r;
  }
  if (hwpt.fault !== undefined) dev.ctx.host.iommu.driverOf(dev.fn)?.enableIopf?.(dev.fn);
  hwpt.refs++;
  if (pasid === undefined) dev.attached = hwpt;
  else dev.pasids.set(pasid, hwpt);
  if (old !== undefined) releaseHwpt(dev, old);
  // The group's other devices moved with it (iommufd_device_do_replace moves their references).
  if (old !== undefined) {
    for (const peer of peers) {
      hwpt.refs++;
      peer.attached = hwpt;
      releaseHwpt(peer, old);
    }
  }
  return 0;
}

function releaseHwpt(dev: IommufdDevice, hwpt: Hwpt): void {
  hwpt.refs--;
  hwpt.fault?.autoRespond(dev.fn);
  const stillOnIoas = dev.attached?.ioas === hwpt.ioas || [...dev.pasids.values()].some((h) => h.ioas === hwpt.ioas);
  if (!stillOnIoas) hwpt.ioas.iopt.unreserve(dev);
  if (hwpt instanceof HwptPaging && hwpt.auto && hwpt.refs === 0) dev.ctx.remove(hwpt);
}

export function detachDevice(dev: IommufdDevice, pasid?: number): void {
  const core = dev.ctx.host.iommu;
  if (pasid === undefined) {
    const h = dev.attached;
    if (h === undefined) return;
    // The group stays attached while another of its devices still is (iommufd_hw_pagetable_detach).
    if (groupPeers(dev).length === 0) core.detachGroup(h.domain, dev.group, dev.ctx);
    dev.attached = undefined;
    releaseHwpt(dev, h);
    return;
  }
  const h = dev.pasids.get(pasid);
  if (h === undefined) return;
  core.detachDevicePasid(h.domain, dev.fn, pasid);
  dev.pasids.delete(pasid);
  releaseHwpt(dev, h);
}

/** The flags iommufd_hwpt_paging_alloc() knows. */
const PAGING_FLAGS = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;

/**
 * iommufd_hwpt_alloc(), in the kernel's order: __reserved (-EOPNOTSUPP; 7.3
 * does not look at __reserved2), data type and length agree (-EINVAL), the
 * device (-ENOENT), the pt object of any type (-EINVAL when absent); then
 * per pt type the allocation's own checks; the fault queue is looked up last,
 * and a HWPT made for a missing one goes again.
 */
export function hwptAlloc(ctx: IommufdCtx, v: StructView<keyof typeof iommu_hwpt_alloc.fields>, respond: Respond, proc: Process): number {
  const flags = v.num('flags');
  if (v.num('__reserved') !== 0) return -EOPNOTSUPP;
  const dataType = v.num('data_type');
  const dataLen = v.num('data_len');
  if ((dataType === IOMMU_HWPT_DATA_NONE) !== (dataLen === 0)) return -EINVAL;
  const dev = ctx.get<IommufdDevice>(v.num('dev_id'), 'device');
  if (typeof dev === 'number') return dev;
  const pt = ctx.get(v.num('pt_id'));
  if (typeof pt === 'number') return -EINVAL;
  let hwpt: Hwpt;
  if (pt instanceof Ioas) {
    // iommufd_hwpt_paging_alloc()
    if ((flags & ~PAGING_FLAGS) !== 0) return -EOPNOTSUPP;
    if ((flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0 && (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0) return -EOPNOTSUPP;
    // domain_alloc_paging_flags() takes no vendor data on either IOMMU (VT-d, SMMUv3: -EOPNOTSUPP).
    if (dataType !== IOMMU_HWPT_DATA_NONE) return -EOPNOTSUPP;
    const h = allocPaging(ctx, dev, pt, flags, false);
    if (typeof h === 'number') return h;
    hwpt = h;
  } else if (pt instanceof HwptPaging) {
    // iommufd_hwpt_nested_alloc()
    if ((flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)) !== 0 || dataLen === 0) return -EOPNOTSUPP;
    if (ctx.host.iommu.driverOf(dev.fn)?.domainAllocNested === undefined) return -EOPNOTSUPP;
    if (pt.auto || !pt.nestParent) return -EINVAL;
    const data = proc.copyFromUser(v.big('data_uptr'), dataLen);
    if (typeof data === 'number') return -EFAULT;
    const fail = ctx.allocFails('hwpt_nested');
    if (fail < 0) return fail;
    const d = ctx.host.iommu.allocNested(dev.fn, pt.domain, dataType, data);
    if (typeof d === 'number') return d;
    pt.refs++;
    hwpt = ctx.add(new HwptNested(d, pt));
  } else if (pt instanceof Viommu) {
    const h = viommuHwptAlloc(ctx, dev, pt, v, proc);
    if (typeof h === 'number') return h;
    hwpt = h;
  } else return -EINVAL;
  hwpt.pasidCompat = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  if ((flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0) {
    const fault = ctx.get<FaultQueue>(v.num('fault_id'), 'fault');
    if (typeof fault === 'number') {
      ctx.remove(hwpt);
      return fault;
    }
    installFault(ctx, hwpt, fault);
  }
  v.setNum('out_hwpt_id', hwpt.id);
  const r = respond();
  if (r < 0) ctx.remove(hwpt);
  return r;
}

/**
 * iommufd_get_hw_info(): flags other than IOMMU_HW_INFO_FLAG_INPUT_TYPE and
 * a non-zero __reserved are -EOPNOTSUPP; without INPUT_TYPE in_data_type
 * reads as DEFAULT. The driver's hw_info (intel_iommu_hw_info,
 * arm_smmu_hw_info) answers DEFAULT or its own type and refuses any other
 * with -EOPNOTSUPP.
 */
export function getHwInfo(ctx: IommufdCtx, v: StructView<keyof typeof iommu_hw_info.fields>, respond: Respond, proc: Process): number {
  const flags = v.num('flags');
  if ((flags & ~IOMMU_HW_INFO_FLAG_INPUT_TYPE) !== 0 || v.raw('__reserved').some((b) => b !== 0)) return -EOPNOTSUPP;
  // in_data_type shares its field with out_data_type.
  const inType = (flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE) !== 0 ? v.num('out_data_type') : IOMMU_HW_INFO_TYPE_DEFAULT;
  const dev = ctx.get<IommufdDevice>(v.num('dev_id'), 'device');
  if (typeof dev === 'number') return dev;
  const driver = ctx.host.iommu.driverOf(dev.fn);
  if (driver === undefined) return -ENODEV;
  const info = driver.hwInfo(dev.fn);
  if (inType !== IOMMU_HW_INFO_TYPE_DEFAULT && inType !== info.type) return -EOPNOTSUPP;
  const userLen = v.num('data_len');
  const copy = Math.min(userLen, info.data.length);
  if (userLen > 0) {
    const buf = new Uint8Array(userLen);
    buf.set(info.data.subarray(0, copy));
    if (proc.copyToUser(v.big('data_uptr'), buf) < 0) return -EFAULT;
  }
  v.setNum('data_len', info.data.length);
  v.setNum('out_data_type', info.type);
  let caps = 0;
  if ((info.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING) !== 0) caps |= IOMMU_HW_CAP_DIRTY_TRACKING;
  caps |= info.capabilities;
  v.setBig('out_capabilities', caps);
  const maxPasids = driver.maxPasids(dev.fn);
  v.setNum('out_max_pasid_log2', maxPasids > 0 ? Math.floor(Math.log2(maxPasids)) : 0);
  return respond();
}

