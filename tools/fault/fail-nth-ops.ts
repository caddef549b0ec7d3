/** Operations for fail-nth runs (tests, the campaign's figures): each a setup (not injected) and the call under test. */
import type { Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { FailNthOperation } from './fail-nth.ts';
import type { Process } from '../../src/host/process.ts';
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
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_TYPE1v2_IOMMU } from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';

export const PAGE = 4096;
const DMA0 = '0000:00:01.0';

function must(what: string, r: number | bigint): void {
  if (r < 0) throw new Error(`${what}: ${r}`);
}

/** A process with a VFIO container holding the group of `bdf`, type1v2 set. */
export function vfioContainer(m: Machine, bdf = DMA0): { p: Process; v: VfioClient; container: number; group: number } {
  const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
  const v = new VfioClient(p);
  const container = p.open('/dev/vfio/vfio');
  const group = p.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(bdf))!.id}`);
  must('open', Math.min(container, group));
  must('set container', v.setContainer(group, container));
  must('set iommu', v.setIommu(container, VFIO_TYPE1v2_IOMMU));
  return { p, v, container, group };
}

export function vfioMapDma(kind: MachineKind, pages = 16): FailNthOperation<{ v: VfioClient; container: number; buf: bigint }> {
  return {
    name: `${kind}: VFIO_IOMMU_MAP_DMA (${pages} pages)`,
    machine: kind,
    setup(m) {
      const c = vfioContainer(m);
      const buf = c.p.mmap(pages * PAGE);
      must('mmap', buf);
      c.p.memWrite(buf, new Uint8Array([1, 2, 3, 4]));
      return { v: c.v, container: c.container, buf };
    },
    run: (_m, s) => s.v.mapDma(s.container, { vaddr: s.buf, iova: 0x10_0000n, size: pages * PAGE }),
  };
}

function cdevPath(m: Machine, p: Process, bdf: string): string {
  const names = p.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
  if (typeof names === 'number' || names.length === 0) throw new Error(`no vfio-dev for ${bdf}`);
  return `/dev/vfio/devices/${names[0]}`;
}

export function iommufdMapAttach(kind: MachineKind, pages = 16): FailNthOperation<{ p: Process; fd: number; cdev: number; ioas: number; buf: bigint }> {
  return {
    name: `${kind}: IOMMU_IOAS_MAP + VFIO_DEVICE_ATTACH_IOMMUFD_PT (${pages} pages)`,
    machine: kind,
    setup(m) {
      const p = m.host.spawn({ memlockLimit: 64 * 2 ** 20 });
      const fd = p.open('/dev/iommu');
      must('open /dev/iommu', fd);
      const a = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
      must('IOAS_ALLOC', p.ioctl(fd, IOMMU_IOAS_ALLOC, a));
      const ioas = new StructView(iommu_ioas_alloc, a).num('out_ioas_id');
      const cdev = p.open(cdevPath(m, p, DMA0));
      must('open cdev', cdev);
      const b = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: fd });
      must('BIND_IOMMUFD', p.ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD, b));
      const buf = p.mmap(pages * PAGE);
      must('mmap', buf);
      return { p, fd, cdev, ioas, buf };
    },
    run(_m, s) {
      const mb = encodeStruct(iommu_ioas_map, {
        size: iommu_ioas_map.size,
        flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA,
        ioas_id: s.ioas,
        user_va: s.buf,
        length: pages * PAGE,
        iova: 0x20_0000,
      });
      const r = s.p.ioctl(s.fd, IOMMU_IOAS_MAP, mb);
      if (r < 0) return r;
      const at = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: s.ioas });
      return s.p.ioctl(s.cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, at);
    },
  };
}

export function svaBind(kind: MachineKind): FailNthOperation<{ v: VfioClient; container: number }> {
  return {
    name: `${kind}: VFIO_IOMMU_BIND (SVA)`,
    machine: kind,
    setup(m) {
      const c = vfioContainer(m);
      return { v: c.v, container: c.container };
    },
    run: (_m, s) => s.v.bindProcess(s.container),
  };
}
