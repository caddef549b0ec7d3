import { registerIommufd } from '../../src/iommufd/main.ts';
import type { Process } from '../../src/host/process.ts';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_alloc,
  iommu_ioas_map,
  iommu_ioas_unmap,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD } from '../../src/uapi/vfio.ts';
import { setup as vfioSetup, type Fixture } from '../vfio/fixture.ts';

export const PAGE = 4096;
export const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

/** The VFIO test machine (test IOMMU driver, two vfio-pci devices) with iommufd loaded and /dev/iommu open. */
export function setup(opts: Parameters<typeof vfioSetup>[0] = {}): Fixture & { fd: number } {
  const f = vfioSetup(opts);
  registerIommufd(f.host);
  const fd = f.p.open('/dev/iommu');
  if (fd < 0) throw new Error(`open /dev/iommu ${fd}`);
  return { ...f, fd };
}

export function ioasAlloc(p: Process, fd: number): number {
  const b = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
  const r = p.ioctl(fd, IOMMU_IOAS_ALLOC, b);
  if (r < 0) return r;
  return new StructView(iommu_ioas_alloc, b).num('out_ioas_id');
}

/** IOAS_MAP: [result, iova]. */
export function map(p: Process, fd: number, ioas: number, va: bigint, length: number, iova?: number, flags = RW): [number, number] {
  const b = encodeStruct(iommu_ioas_map, {
    size: iommu_ioas_map.size,
    flags: flags | (iova !== undefined ? IOMMU_IOAS_MAP_FIXED_IOVA : 0),
    ioas_id: ioas,
    user_va: va,
    length,
    iova: iova ?? 0,
  });
  const r = p.ioctl(fd, IOMMU_IOAS_MAP, b);
  return [r, Number(new StructView(iommu_ioas_map, b).big('iova'))];
}

/** IOAS_UNMAP: [result, bytes]. */
export function unmap(p: Process, fd: number, ioas: number, iova: bigint | number, length: bigint | number): [number, bigint] {
  const b = encodeStruct(iommu_ioas_unmap, { size: iommu_ioas_unmap.size, ioas_id: ioas, iova: BigInt(iova), length: BigInt(length) });
  const r = p.ioctl(fd, IOMMU_IOAS_UNMAP, b);
  return [r, new StructView(iommu_ioas_unmap, b).big('length')];
}

/** Open the cdev of a vfio-pci device and bind it: [cdev fd, device ID]. */
export function bind(p: Process, fd: number, minor: number): [number, number] {
  const cdev = p.open(`/dev/vfio/devices/vfio${minor}`);
  if (cdev < 0) throw new Error(`open cdev ${cdev}`);
  const b = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: fd });
  const r = p.ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD, b);
  if (r < 0) throw new Error(`bind ${r}`);
  return [cdev, new StructView(vfio_device_bind_iommufd, b).num('out_devid')];
}

/** ATTACH_IOMMUFD_PT: [result, pt_id written back]. */
export function attach(p: Process, cdev: number, ptId: number): [number, number] {
  const b = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: ptId });
  const r = p.ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, b);
  return [r, new StructView(vfio_device_attach_iommufd_pt, b).num('pt_id')];
}
