/**
 * /dev/iommu (drivers/iommu/iommufd/main.c): the file, the ioctl table that
 * states each command's struct and minimum size once, the generic rules
 * (a `size` below the minimum is -EINVAL, bytes beyond the struct the kernel
 * knows must be zero or -E2BIG, an unknown command is -ENOTTY), results
 * copied back over at most `size` bytes, and the VFIO cdev side
 * (VFIO_DEVICE_BIND_IOMMUFD, ATTACH/DETACH_IOMMUFD_PT) registered with
 * setCdevIommufdOps().
 */
import { IOMMUFD_INJECTION_POINTS } from './points.ts';
import { EBADF, EBUSY, EFAULT, EINVAL, ENOTTY, EOPNOTSUPP } from '../uapi/errno.ts';
import type { Host } from '../host/host.ts';
import type { Process } from '../host/process.ts';
import type { OpenFile } from '../host/vfs.ts';
import {
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_DETACH_PASID,
  iommu_destroy,
  iommu_fault_alloc,
  iommu_hw_info,
  iommu_hwpt_alloc,
  iommu_hwpt_get_dirty_bitmap,
  iommu_hwpt_invalidate,
  iommu_hwpt_set_dirty_tracking,
  iommu_ioas_alloc,
  iommu_ioas_allow_iovas,
  iommu_ioas_copy,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_ioas_unmap,
  iommu_option,
  iommu_vfio_ioas,
  vfio_device_attach_iommufd_pt,
  vfio_device_detach_iommufd_pt,
} from '../uapi/iommufd.ts';
import { StructView, type StructDef } from '../uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_IOMMUFD_PT } from '../uapi/vfio.ts';
import type { VfioDeviceFile } from '../vfio/device-file.ts';
import type { VfioPciDevice } from '../vfio/vfio-pci.ts';
import { setCdevIommufdOps } from '../vfio/module.ts';
import { copyStructFromUser, UserArg } from '../vfio/user-arg.ts';
import { attachDevice, bindDevice, detachDevice, getHwInfo, hwptAlloc, unbindDevice } from './device.ts';
import { EBADFD, ENOMEM } from '../uapi/errno.ts';
import { injectedErrno } from './points.ts';
import { compatIoasCreate, compatIoasId, vfioCompatIoctl } from './vfio-compat.ts';
import { IOMMUFD_CMD_BASE } from '../uapi/iommufd.ts';
import { vfioModule } from '../vfio/module.ts';
import { FaultFile, FaultQueue } from './fault.ts';
import { getDirtyBitmap, hwptInvalidate, setDirtyTracking } from './hwpt.ts';
import { IOMMU_VDEVICE_ALLOC, IOMMU_VIOMMU_ALLOC, iommu_vdevice_alloc, iommu_viommu_alloc } from '../uapi/iommufd.ts';
import { hwQueueAlloc, vdeviceAlloc, viommuAlloc } from './viommu.ts';
import { IOMMU_HW_QUEUE_ALLOC, IOMMU_IOAS_NOIOMMU_GET_PA, iommu_hw_queue_alloc, iommu_ioas_noiommu_get_pa } from '../uapi/iommufd.ts';
import { IOMMU_VEVENTQ_ALLOC, iommu_veventq_alloc } from '../uapi/iommufd.ts';
import { veventqAlloc } from './veventq.ts';
import { installEventq } from './eventq-file.ts';
import { ioasAlloc, ioasAllowIovas, ioasChangeProcess, ioasCopy, ioasIovaRanges, ioasMap, ioasMapFile, ioasUnmap, option, type Respond } from './ioas.ts';
import { IOMMU_IOAS_CHANGE_PROCESS, IOMMU_IOAS_MAP_FILE, iommu_ioas_change_process, iommu_ioas_map_file } from '../uapi/iommufd.ts';
import { Ioas, IommufdCtx, type IommufdDevice } from './objects.ts';
import { Attachment } from '../lib/attachment.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyView = StructView<any>;
interface Op {
  def: StructDef;
  /** offsetofend of the last field every caller must pass. */
  min: number;
  run(ctx: IommufdCtx, v: AnyView, respond: Respond, proc: Process): number;
}

const end = (def: StructDef, field: string): number => {
  const f = def.fields[field]!;
  return f.offset + f.size;
};

const OPS = new Map<number, Op>([
  [IOMMU_DESTROY, { def: iommu_destroy, min: end(iommu_destroy, 'id'), run: (c, v) => destroy(c, v.num('id')) }],
  [IOMMU_IOAS_ALLOC, { def: iommu_ioas_alloc, min: end(iommu_ioas_alloc, 'out_ioas_id'), run: (c, v, r) => ioasAlloc(c, v, r) }],
  [IOMMU_IOAS_ALLOW_IOVAS, { def: iommu_ioas_allow_iovas, min: end(iommu_ioas_allow_iovas, 'allowed_iovas'), run: (c, v, _r, p) => ioasAllowIovas(c, v, p) }],
  [IOMMU_IOAS_COPY, { def: iommu_ioas_copy, min: end(iommu_ioas_copy, 'src_iova'), run: (c, v, r) => ioasCopy(c, v, r) }],
  [IOMMU_IOAS_IOVA_RANGES, { def: iommu_ioas_iova_ranges, min: end(iommu_ioas_iova_ranges, 'out_iova_alignment'), run: (c, v, r, p) => ioasIovaRanges(c, v, r, p) }],
  [IOMMU_IOAS_MAP, { def: iommu_ioas_map, min: end(iommu_ioas_map, 'iova'), run: (c, v, r, p) => ioasMap(c, v, r, p) }],
  [IOMMU_IOAS_UNMAP, { def: iommu_ioas_unmap, min: end(iommu_ioas_unmap, 'length'), run: (c, v, r) => ioasUnmap(c, v, r) }],
  [IOMMU_OPTION, { def: iommu_option, min: end(iommu_option, 'val64'), run: (c, v, r, p) => option(c, v, r, p) }],
  [IOMMU_VFIO_IOAS, { def: iommu_vfio_ioas, min: end(iommu_vfio_ioas, '__reserved'), run: (c, v, r) => vfioIoas(c, v, r) }],
  [IOMMU_HWPT_ALLOC, { def: iommu_hwpt_alloc, min: end(iommu_hwpt_alloc, '__reserved'), run: (c, v, r, p) => hwptAlloc(c, v, r, p) }],
  [IOMMU_GET_HW_INFO, { def: iommu_hw_info, min: end(iommu_hw_info, '__reserved'), run: (c, v, r, p) => getHwInfo(c, v, r, p) }],
  [IOMMU_HWPT_SET_DIRTY_TRACKING, { def: iommu_hwpt_set_dirty_tracking, min: end(iommu_hwpt_set_dirty_tracking, '__reserved'), run: (c, v, r) => setDirtyTracking(c, v, r) }],
  [IOMMU_HWPT_GET_DIRTY_BITMAP, { def: iommu_hwpt_get_dirty_bitmap, min: end(iommu_hwpt_get_dirty_bitmap, 'data'), run: (c, v, r, p) => getDirtyBitmap(c, v, r, p) }],
  [IOMMU_HWPT_INVALIDATE, { def: iommu_hwpt_invalidate, min: end(iommu_hwpt_invalidate, '__reserved'), run: (c, v, r, p) => hwptInvalidate(c, v, r, p) }],
  [IOMMU_FAULT_QUEUE_ALLOC, { def: iommu_fault_alloc, min: end(iommu_fault_alloc, 'out_fault_fd'), run: (c, v, r, p) => faultAlloc(c, v, r, p) }],
  [IOMMU_VIOMMU_ALLOC, { def: iommu_viommu_alloc, min: end(iommu_viommu_alloc, 'out_viommu_id'), run: (c, v, r) => viommuAlloc(c, v, r) }],
  [IOMMU_VDEVICE_ALLOC, { def: iommu_vdevice_alloc, min: end(iommu_vdevice_alloc, 'virt_id'), run: (c, v, r) => vdeviceAlloc(c, v, r) }],
  [IOMMU_VEVENTQ_ALLOC, { def: iommu_veventq_alloc, min: end(iommu_veventq_alloc, 'out_veventq_fd'), run: (c, v, r, p) => veventqAlloc(c, v, r, p) }],
  [IOMMU_IOAS_MAP_FILE, { def: iommu_ioas_map_file, min: end(iommu_ioas_map_file, 'iova'), run: (c, v, r, p) => ioasMapFile(c, v, r, p) }],
  [IOMMU_IOAS_CHANGE_PROCESS, { def: iommu_ioas_change_process, min: end(iommu_ioas_change_process, '__reserved'), run: (c, v, _r, p) => ioasChangeProcess(c, v, p) }],
  [IOMMU_HW_QUEUE_ALLOC, { def: iommu_hw_queue_alloc, min: end(iommu_hw_queue_alloc, 'length'), run: (c, v) => hwQueueAlloc(c, v) }],
  // iommufd_ioas_noiommu_get_pa() exists only with CONFIG_IOMMUFD_NOIOMMU (VFIO_NOIOMMU + VFIO_DEVICE_CDEV); without it -EOPNOTSUPP.
  [IOMMU_IOAS_NOIOMMU_GET_PA, { def: iommu_ioas_noiommu_get_pa, min: end(iommu_ioas_noiommu_get_pa, 'out_phys'), run: () => -EOPNOTSUPP }],
]);

/** Each command's struct size and minimum size, as the table states them (main.c's iommufd_ioctl_ops). */
export function iommufdCommandSizes(): Map<number, { size: number; min: number }> {
  return new Map([...OPS].map(([req, op]) => [req, { size: op.def.size, min: op.min }]));
}

/** IOMMU_DESTROY: -ENOENT for an unknown ID, -EBUSY while anything holds the object. */
function destroy(ctx: IommufdCtx, id: number): number {
  const o = ctx.get(id);
  if (typeof o === 'number') return o;
  if (o.refs > 0) return -EBUSY;
  ctx.remove(o);
  return 0;
}

function vfioIoas(ctx: IommufdCtx, v: AnyView, respond: Respond): number {
  if (v.num('__reserved') !== 0) return -EOPNOTSUPP;
  switch (v.num('op')) {
    case IOMMU_VFIO_IOAS_GET: {
      if (ctx.vfioIoas === undefined) return -ENODEV_COMPAT;
      v.setNum('ioas_id', ctx.vfioIoas.id);
      return respond();
    }
    case IOMMU_VFIO_IOAS_SET: {
      const ioas = ctx.get<Ioas>(v.num('ioas_id'), 'ioas');
      if (typeof ioas === 'number') return ioas;
      ctx.vfioIoas = ioas;
      return 0;
    }
    case IOMMU_VFIO_IOAS_CLEAR:
      ctx.vfioIoas = undefined;
      return 0;
    default:
      return -EOPNOTSUPP;
  }
}
/** iommufd_vfio_ioas GET with no compat IOAS set: -ENODEV. */
const ENODEV_COMPAT = 19;

function faultAlloc(ctx: IommufdCtx, v: AnyView, respond: Respond, proc: Process): number {
  if (v.num('flags') !== 0) return -EOPNOTSUPP;
  const fail = ctx.allocFails('fault');
  if (fail < 0) return fail;
  if (injectedErrno(ctx.host.platform.faults, 'iommufd.fault_alloc', ENOMEM) < 0) return -ENOMEM;
  const fault = ctx.add(new FaultQueue(ctx));
  return installEventq(ctx, fault, new FaultFile(fault), proc, (id, fd) => {
    v.setNum('out_fault_id', id);
    v.setNum('out_fault_fd', fd);
  }, respond);
}

/** An open /dev/iommu. */
export class IommufdFile implements OpenFile {
  private closed = false;
  constructor(readonly ctx: IommufdCtx) {}

  ioctl(request: number, arg: Uint8Array | number, proc: Process): number {
    // iommufd_fops_ioctl(): numbers below IOMMUFD_CMD_BASE are the VFIO container ioctls (vfio_compat.c).
    if ((request & 0xff) < IOMMUFD_CMD_BASE) return vfioCompatIoctl(this.ctx, request, arg, proc);
    const op = OPS.get(request);
    if (op === undefined) return -ENOTTY;
    const u = UserArg.of(arg, proc);
    if (typeof u === 'number') return u;
    const head = u.read(0, 4);
    if (typeof head === 'number') return head;
    const size = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
    if (size < op.min) return -EINVAL;
    const k = op.def.size;
    const buf = copyStructFromUser(u, k, size);
    if (typeof buf === 'number') return buf;
    const v = new StructView(op.def, buf);
    const respond = (): number => (u.write(0, buf.subarray(0, Math.min(size, k))) < 0 ? -EFAULT : 0);
    return op.run(this.ctx, v, respond, proc);
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.put();
  }
}

const bound = new Attachment<VfioDeviceFile, IommufdDevice>('iommufd device');

/** IOMMU_NO_PASID: PASID 0 names the RID itself. */
const IOMMU_NO_PASID = 0;

/**
 * What vfio_device remembers of attachments made through the cdev's ATTACH_IOMMUFD_PT
 * (vdev->iommufd_attached and vdev->pasids): it decides attach or replace, and what DETACH undoes.
 */
interface VfioAttachState {
  rid: boolean;
  pasids: Set<number>;
}
const vfioAttached = new Attachment<VfioDeviceFile, VfioAttachState>('iommufd attach state');
function vfioAttach(file: VfioDeviceFile): VfioAttachState {
  return vfioAttached.get(file) ?? vfioAttached.set(file, { rid: false, pasids: new Set() });
}

/** The iommufd device bound to a VFIO cdev file, if any (for tests and tools). */
export function boundDevice(file: VfioDeviceFile): IommufdDevice | undefined {
  return bound.get(file);
}

/** The context a VFIO group holds after SET_CONTAINER with an iommufd (group->iommufd). */
class GroupCtx {
  constructor(readonly ctx: IommufdCtx) {}
  put(): void {
    this.ctx.put();
  }
}

/** Devices bound through a group (the group path may open a device more than once; the first open binds). */
const groupBound = new Attachment<VfioPciDevice, IommufdDevice>('iommufd group binding');

const registered = new WeakSet<Host>();

/**
 * Load iommufd on a host: /dev/iommu appears and VFIO cdevs can bind to it.
 * Idempotent.
 */
export function registerIommufd(host: Host): void {
  if (registered.has(host)) return;
  registered.add(host);
  host.platform.faults.define(IOMMUFD_INJECTION_POINTS);
  host.vfs.register('/dev/iommu', { open: () => new IommufdFile(new IommufdCtx(host)) });
  if (vfioModule(host).containerBackend === 'iommufd') {
    // CONFIG_IOMMUFD_VFIO_CONTAINER: the "vfio" misc device is an iommufd, accounting as VFIO does (iommufd_fops_open).
    host.vfs.register('/dev/vfio/vfio', {
      open: () => {
        const ctx = new IommufdCtx(host);
        ctx.accountMode = 'mm';
        return new IommufdFile(ctx);
      },
    });
  }
  setCdevIommufdOps(host, {
    groupSetIommufd(file) {
      if (!(file instanceof IommufdFile)) return undefined;
      const ctx = file.ctx;
      const r = compatIoasCreate(ctx);
      if (r < 0) return r;
      ctx.hold();
      return new GroupCtx(ctx);
    },
    groupBind(file, ictx) {
      const shared = groupBound.get(file.dev);
      if (shared !== undefined) {
        bound.set(file, shared);
        return 0;
      }
      const ctx = (ictx as GroupCtx).ctx;
      const dev = bindDevice(ctx, file);
      if (typeof dev === 'number') return dev;
      // vfio_iommufd_compat_attach_ioas(): -ENODEV once the compat IOAS is gone.
      const id = compatIoasId(ctx);
      const r = id < 0 ? id : attachDevice(dev, id);
      if (r < 0) {
        unbindDevice(dev);
        return r;
      }
      groupBound.set(file.dev, dev);
      bound.set(file, dev);
      return 0;
    },
    groupUnbind(file) {
      const dev = bound.get(file);
      if (dev === undefined) return;
      bound.clear(file);
      if (file.dev.openCount > 0) return;
      groupBound.clear(file.dev);
      unbindDevice(dev);
    },
    bind(file, iommufd, proc, open) {
      // iommufd_ctx_from_fd(): -EBADF for no file, -EBADFD for one that is not an iommufd.
      const f = proc.file(iommufd);
      if (f === undefined) return -EBADF;
      if (!(f instanceof IommufdFile)) return -EBADFD;
      const o = open();
      if (o < 0) return o;
      const dev = bindDevice(f.ctx, file);
      if (typeof dev === 'number') {
        file.dev.close();
        return dev;
      }
      bound.set(file, dev);
      return dev.id;
    },
    ioctl(file, request, arg, proc) {
      const dev = bound.get(file);
      if (dev === undefined) return -EINVAL;
      const u = UserArg.of(arg, proc);
      if (typeof u === 'number') return u;
      if (request === VFIO_DEVICE_ATTACH_IOMMUFD_PT) {
        const minsz = end(vfio_device_attach_iommufd_pt, 'pt_id');
        const h = u.read(0, 4);
        if (typeof h === 'number') return h;
        const argsz = new DataView(h.buffer).getUint32(0, true);
        if (argsz < minsz) return -EINVAL;
        const b = u.read(0, Math.min(argsz, vfio_device_attach_iommufd_pt.size));
        if (typeof b === 'number') return b;
        const full = new Uint8Array(vfio_device_attach_iommufd_pt.size);
        full.set(b);
        const v = new StructView(vfio_device_attach_iommufd_pt, full);
        const flags = v.num('flags');
        if ((flags & ~VFIO_DEVICE_ATTACH_PASID) !== 0) return -EINVAL;
        const vf = vfioAttach(file);
        let id: number;
        let pasid: number | undefined;
        if (flags & VFIO_DEVICE_ATTACH_PASID) {
          if (argsz < end(vfio_device_attach_iommufd_pt, 'pasid')) return -EINVAL;
          // vfio_iommufd_physical_pasid_attach_ioas: replace a PASID it attached before, else attach it; PASID 0
          // is IOMMU_NO_PASID, the RID itself, for iommufd.
          const p = v.num('pasid');
          pasid = p === IOMMU_NO_PASID ? undefined : p;
          const known = vf.pasids.has(p);
          id = attachDevice(dev, v.num('pt_id'), pasid, known);
          if (id >= 0) vf.pasids.add(p);
        } else {
          // vfio_iommufd_physical_attach_ioas: iommufd_device_replace once attached this way, else iommufd_device_attach.
          id = attachDevice(dev, v.num('pt_id'), undefined, vf.rid);
          if (id >= 0) vf.rid = true;
        }
        if (id < 0) return id;
        v.setNum('pt_id', id);
        if (u.write(8, full.subarray(8, 12)) < 0) {
          detachDevice(dev, pasid);
          return -EFAULT;
        }
        return 0;
      }
      if (request === VFIO_DEVICE_DETACH_IOMMUFD_PT) {
        const minsz = end(vfio_device_detach_iommufd_pt, 'flags');
        const h = u.read(0, minsz);
        if (typeof h === 'number') return h;
        const dv = new DataView(h.buffer);
        const argsz = dv.getUint32(0, true);
        const flags = dv.getUint32(4, true);
        if (argsz < minsz || (flags & ~VFIO_DEVICE_DETACH_PASID) !== 0) return -EINVAL;
        const vf = vfioAttach(file);
        if (flags & VFIO_DEVICE_DETACH_PASID) {
          if (argsz < end(vfio_device_detach_iommufd_pt, 'pasid')) return -EINVAL;
          const p = u.read(8, 4);
          if (typeof p === 'number') return p;
          const pasid = new DataView(p.buffer).getUint32(0, true);
          // vfio_iommufd_physical_pasid_detach_ioas: only a PASID attached through this path.
          if (!vf.pasids.delete(pasid)) return 0;
          detachDevice(dev, pasid === IOMMU_NO_PASID ? undefined : pasid);
          return 0;
        }
        // vfio_iommufd_physical_detach_ioas: nothing unless the RID was attached through ATTACH without PASID.
        if (!vf.rid) return 0;
        vf.rid = false;
        detachDevice(dev);
        return 0;
      }
      return -ENOTTY;
    },
    unbind(file) {
      const dev = bound.get(file);
      if (dev === undefined) return;
      bound.clear(file);
      vfioAttached.clear(file);
      unbindDevice(dev);
    },
  });
}
