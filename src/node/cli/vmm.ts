/**
 * The ioctl sequences a VMM issues, as small functions scenarios share:
 * VFIO type1 the way QEMU's vfio/container.c sets it up, and iommufd the way
 * QEMU's vfio/iommufd.c does (cdev bind, IOAS, attach, map).
 */
import type { Machine } from '../../../machines/machine.ts';
import type { Process } from '../../host/process.ts';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  iommu_ioas_alloc,
  iommu_ioas_map,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
} from '../../uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../uapi/struct.ts';
import { VFIO_API_VERSION, VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_TYPE1v2_IOMMU } from '../../uapi/vfio.ts';
import { VfioClient } from '../../vfio/client.ts';

/** A failed step of a VMM sequence: which ioctl, and the errno. */
export class VmmError extends Error {
  override name = 'VmmError';
}

function ok(r: number, what: string): number {
  if (r < 0) throw new VmmError(`${what} failed (${r})`);
  return r;
}

export interface Type1Setup {
  v: VfioClient;
  container: number;
  group: number;
  device: number;
  groupId: number;
}

/**
 * QEMU's type1 sequence: open the container, check the API version and the
 * extension, open the group, check it is viable, SET_CONTAINER, SET_IOMMU
 * (type1v2), GET_INFO, then GET_DEVICE_FD. Mapping memory is `mapDma`.
 */
export function vfioType1Setup(m: Machine, p: Process, bdf: string): Type1Setup {
  const v = new VfioClient(p);
  const dev = m.device(bdf);
  const groupId = m.host.iommu.groupOf(dev)?.id;
  if (groupId === undefined) throw new VmmError(`${bdf} has no IOMMU group`);
  const container = ok(p.open('/dev/vfio/vfio'), 'open /dev/vfio/vfio');
  if (v.apiVersion(container) !== VFIO_API_VERSION) throw new VmmError('VFIO_GET_API_VERSION: unexpected version');
  if (v.checkExtension(container, VFIO_TYPE1v2_IOMMU) <= 0) throw new VmmError('VFIO_CHECK_EXTENSION(TYPE1v2): not supported');
  const group = ok(p.open(`/dev/vfio/${groupId}`), `open /dev/vfio/${groupId}`);
  const status = ok(v.groupStatus(group), 'VFIO_GROUP_GET_STATUS');
  if ((status & 1) === 0) throw new VmmError(`group ${groupId} is not viable`);
  ok(v.setContainer(group, container), 'VFIO_GROUP_SET_CONTAINER');
  ok(v.setIommu(container, VFIO_TYPE1v2_IOMMU), 'VFIO_SET_IOMMU');
  const info = v.iommuInfo(container);
  if (typeof info === 'number') throw new VmmError(`VFIO_IOMMU_GET_INFO failed (${info})`);
  const device = ok(v.deviceFd(group, dev.bdf), 'VFIO_GROUP_GET_DEVICE_FD');
  return { v, container, group, device, groupId };
}

export interface IommufdSetup {
  v: VfioClient;
  iommufd: number;
  /** The VFIO cdev, bound: also the device fd for regions. */
  device: number;
  devId: number;
  ioas: number;
}

/** The vfio cdev minor of a device, from sysfs (/sys/bus/pci/devices/<bdf>/vfio-dev/vfioN). */
export function cdevOf(p: Process, bdf: string): string {
  const entries = p.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
  if (typeof entries === 'number' || entries.length === 0) throw new VmmError(`${bdf}: no vfio-dev in sysfs (${String(entries)})`);
  return `/dev/vfio/devices/${entries[0]}`;
}

/** QEMU's iommufd sequence: open /dev/iommu and the cdev, BIND_IOMMUFD, IOAS_ALLOC, ATTACH_IOMMUFD_PT. */
export function iommufdSetup(m: Machine, p: Process, bdf: string): IommufdSetup {
  const v = new VfioClient(p);
  const bdfCanon = m.device(bdf).bdf;
  const iommufd = ok(p.open('/dev/iommu'), 'open /dev/iommu');
  const device = ok(p.open(cdevOf(p, bdfCanon)), 'open the vfio cdev');
  const b = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd });
  ok(p.ioctl(device, VFIO_DEVICE_BIND_IOMMUFD, b), 'VFIO_DEVICE_BIND_IOMMUFD');
  const devId = new StructView(vfio_device_bind_iommufd, b).num('out_devid');
  const a = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
  ok(p.ioctl(iommufd, IOMMU_IOAS_ALLOC, a), 'IOMMU_IOAS_ALLOC');
  const ioas = new StructView(iommu_ioas_alloc, a).num('out_ioas_id');
  const at = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: ioas });
  ok(p.ioctl(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, at), 'VFIO_DEVICE_ATTACH_IOMMUFD_PT');
  return { v, iommufd, device, devId, ioas };
}

/** IOMMU_IOAS_MAP at a fixed IOVA, read/write. */
export function ioasMap(p: Process, iommufd: number, ioas: number, vaddr: bigint, iova: bigint, length: number): void {
  const b = encodeStruct(iommu_ioas_map, {
    size: iommu_ioas_map.size,
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas,
    user_va: vaddr,
    length,
    iova,
  });
  ok(p.ioctl(iommufd, IOMMU_IOAS_MAP, b), 'IOMMU_IOAS_MAP');
}
