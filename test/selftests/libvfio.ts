/**
 * What the VFIO selftests' lib/ (tools/testing/selftests/vfio/lib) gives its
 * tests, written for the emulated host: the five IOMMU modes, opening the
 * device under test through its group and container or its cdev, the IOVA
 * allocator, map/unmap, the device's regions, BAR mmaps and IRQs. The device
 * under test is the plain test device at 0000:00:03.0 (where the rig has edu).
 */
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { Process } from '../../src/host/process.ts';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_alloc,
  iommu_ioas_iova_ranges,
  iommu_ioas_map,
  iommu_ioas_unmap,
  iommu_iova_range,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_API_VERSION,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
} from '../../src/uapi/vfio.ts';
import { VfioClient, type RegionInfo } from '../../src/vfio/client.ts';

export { MACHINES } from './lib.ts';
export const DEVICE_BDF = '0000:00:03.0';
export const PAGE = 4096;

/** lib/iommu.c's iommu_modes: the container it opens (or none: native iommufd) and the type1 type it sets. */
export const IOMMU_MODES = [
  { name: 'vfio_type1_iommu', containerPath: '/dev/vfio/vfio', type: VFIO_TYPE1_IOMMU },
  { name: 'vfio_type1v2_iommu', containerPath: '/dev/vfio/vfio', type: VFIO_TYPE1v2_IOMMU },
  { name: 'iommufd_compat_type1', containerPath: '/dev/iommu', type: VFIO_TYPE1_IOMMU },
  { name: 'iommufd_compat_type1v2', containerPath: '/dev/iommu', type: VFIO_TYPE1v2_IOMMU },
  { name: 'iommufd', containerPath: undefined, type: 0 },
] as const;
export type IommuMode = (typeof IOMMU_MODES)[number];
/** default_iommu_mode (lib/iommu.c) */
export const DEFAULT_MODE = IOMMU_MODES[4];

export interface Iommu {
  mode: IommuMode;
  containerFd: number;
  iommufd: number;
  ioas: number;
}

export interface Device {
  m: Machine;
  p: Process;
  iommu: Iommu;
  fd: number;
  groupFd: number;
  v: VfioClient;
}

function must(r: number, what: string): number {
  if (r < 0) throw new Error(`${what}: ${r}`);
  return r;
}

/** iommu_init() */
export function iommuInit(p: Process, mode: IommuMode): Iommu {
  if (mode.containerPath !== undefined) {
    const c = must(p.open(mode.containerPath), `open ${mode.containerPath}`);
    if (p.ioctl(c, VFIO_GET_API_VERSION, 0) !== VFIO_API_VERSION) throw new Error('VFIO_GET_API_VERSION');
    return { mode, containerFd: c, iommufd: 0, ioas: 0 };
  }
  const fd = must(p.open('/dev/iommu'), 'open /dev/iommu');
  const b = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
  must(p.ioctl(fd, IOMMU_IOAS_ALLOC, b), 'IOAS_ALLOC');
  return { mode, containerFd: -1, iommufd: fd, ioas: new StructView(iommu_ioas_alloc, b).num('out_ioas_id') };
}

/** A machine, a root process and vfio_pci_device_init(DEVICE_BDF) in `mode`. */
export function deviceInit(kind: MachineKind, mode: IommuMode, opts: { ramBytes?: number } = {}): Device {
  const m = createMachine(kind, { ramBytes: opts.ramBytes ?? 128 * 2 ** 20 });
  const p = m.host.spawn({ memlockLimit: 2 ** 40, uid: 0 });
  const iommu = iommuInit(p, mode);
  const v = new VfioClient(p);
  let fd: number;
  let groupFd = -1;
  if (mode.containerPath !== undefined) {
    // vfio_pci_group_setup + vfio_pci_container_setup
    const group = m.host.iommu.groupOf(m.device(DEVICE_BDF))!.id;
    groupFd = must(p.open(`/dev/vfio/${group}`), 'open group');
    const c = new Uint8Array(4);
    new DataView(c.buffer).setInt32(0, iommu.containerFd, true);
    must(p.ioctl(groupFd, VFIO_GROUP_SET_CONTAINER, c), 'GROUP_SET_CONTAINER');
    p.ioctl(iommu.containerFd, VFIO_SET_IOMMU, mode.type);
    fd = must(v.deviceFd(groupFd, DEVICE_BDF), 'GET_DEVICE_FD');
  } else {
    // vfio_pci_iommufd_setup: the cdev, bound and attached to the IOAS
    const names = p.readdir(`/sys/bus/pci/devices/${DEVICE_BDF}/vfio-dev`);
    if (typeof names === 'number' || names.length === 0) throw new Error('no vfio-dev');
    fd = must(p.open(`/dev/vfio/devices/${names[0]}`), 'open cdev');
    must(p.ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: iommu.iommufd })), 'BIND_IOMMUFD');
    must(p.ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: iommu.ioas })), 'ATTACH_IOMMUFD_PT');
  }
  return { m, p, iommu, fd, groupFd, v };
}

/** vfio_pci_device_cleanup + iommu_cleanup: everything closes; then no page of the process is pinned. */
export function cleanup(d: Device): number {
  d.p.close(d.fd);
  if (d.groupFd >= 0) d.p.close(d.groupFd);
  d.p.close(d.iommu.iommufd || d.iommu.containerFd);
  return d.p.mm.pinnedVm;
}

/** __iommu_map: 0 or -errno. */
export function iommuMap(d: Device, vaddr: bigint, iova: bigint, size: bigint): number {
  if (d.iommu.iommufd) {
    return d.p.ioctl(
      d.iommu.iommufd,
      IOMMU_IOAS_MAP,
      encodeStruct(iommu_ioas_map, { size: iommu_ioas_map.size, flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA, user_va: vaddr, iova, length: size, ioas_id: d.iommu.ioas }),
    );
  }
  return d.p.ioctl(d.iommu.containerFd, VFIO_IOMMU_MAP_DMA, encodeStruct(vfio_iommu_type1_dma_map, { argsz: vfio_iommu_type1_dma_map.size, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr, iova, size }));
}

/** __iommu_unmap / __iommu_unmap_all: [0 or -errno, bytes unmapped]. */
export function iommuUnmap(d: Device, iova: bigint, size: bigint, all = false): [number, bigint] {
  if (d.iommu.iommufd) {
    const b = encodeStruct(iommu_ioas_unmap, { size: iommu_ioas_unmap.size, iova: all ? 0n : iova, length: all ? (1n << 64n) - 1n : size, ioas_id: d.iommu.ioas });
    const r = d.p.ioctl(d.iommu.iommufd, IOMMU_IOAS_UNMAP, b);
    return [r, new StructView(iommu_ioas_unmap, b).big('length')];
  }
  const b = encodeStruct(vfio_iommu_type1_dma_unmap, { argsz: vfio_iommu_type1_dma_unmap.size, iova: all ? 0n : iova, size: all ? 0n : size, flags: all ? VFIO_DMA_UNMAP_FLAG_ALL : 0 });
  const r = d.p.ioctl(d.iommu.containerFd, VFIO_IOMMU_UNMAP_DMA, b);
  return [r, new StructView(vfio_iommu_type1_dma_unmap, b).big('size')];
}

/** iommu_iova_ranges(): the container's VFIO_IOMMU_GET_INFO ranges, or the IOAS's. */
export function iovaRanges(d: Device): { start: bigint; last: bigint }[] {
  if (!d.iommu.iommufd) {
    const info = d.v.iommuInfo(d.iommu.containerFd);
    if (typeof info === 'number') throw new Error(`GET_INFO ${info}`);
    return info.iovaRanges.map((r) => ({ start: r.start, last: r.end }));
  }
  const buf = d.p.mmap(PAGE, {});
  const b = encodeStruct(iommu_ioas_iova_ranges, { size: iommu_ioas_iova_ranges.size, ioas_id: d.iommu.ioas, num_iovas: 64, allowed_iovas: buf });
  must(d.p.ioctl(d.iommu.iommufd, IOMMU_IOAS_IOVA_RANGES, b), 'IOVA_RANGES');
  const n = new StructView(iommu_ioas_iova_ranges, b).num('num_iovas');
  const raw = d.p.memRead(buf, n * 16) as Uint8Array;
  d.p.munmap(buf, PAGE);
  return Array.from({ length: n }, (_, i) => {
    const v = new StructView(iommu_iova_range, raw.subarray(i * 16));
    return { start: v.big('start'), last: v.big('last') };
  });
}

/** lib/iova_allocator.c: size-aligned IOVAs handed out in order through the ranges. */
export class IovaAllocator {
  private idx = 0;
  private offset = 0n;

  constructor(private readonly ranges: { start: bigint; last: bigint }[]) {}

  alloc(size: bigint): bigint {
    if (size <= 0n || (size & (size - 1n)) !== 0n) throw new Error('size must be a power of 2');
    for (;;) {
      const r = this.ranges[this.idx];
      if (r === undefined) throw new Error('IOVA allocator out of space');
      let iova = r.start + this.offset;
      let last = iova + size - 1n;
      if (last <= r.last) {
        iova = last & ~(size - 1n);
        last = iova + size - 1n;
        if (last <= r.last) {
          if (last === r.last) {
            this.idx++;
            this.offset = 0n;
          } else this.offset = last - r.start + 1n;
          return iova;
        }
      }
      this.idx++;
      this.offset = 0n;
    }
  }
}

/** mmap_reserve(size, align, offset): a PROT_NONE reservation trimmed so that address + offset is align-aligned. */
export function mmapReserve(p: Process, size: bigint, align: bigint, offset: bigint): bigint {
  const delta = align - offset;
  const base = p.mmap(size + align, { prot: 0 });
  if (base < 0n) throw new Error(`mmap reserve ${base}`);
  const at = ((base + delta + align - 1n) / align) * align - delta;
  if (at > base) must(p.munmap(base, at - base), 'munmap head');
  must(p.munmap(at + size, base + align - at), 'munmap tail');
  return at;
}

export interface Bar {
  index: number;
  info: RegionInfo;
  vaddr: bigint;
}

/** vfio_pci_bar_map for every BAR that offers mmap: reserved at the BAR size's alignment (at most 1G), then MAP_FIXED. */
export function mapBars(d: Device): Bar[] {
  const out: Bar[] = [];
  for (let i = 0; i < 6; i++) {
    const info = d.v.regionInfo(d.fd, i);
    if (typeof info === 'number') throw new Error(`REGION_INFO ${info}`);
    if ((info.flags & 4) === 0 || info.size === 0n) {
      out.push({ index: i, info, vaddr: 0n });
      continue;
    }
    const align = info.size < 1n << 30n ? info.size : 1n << 30n;
    const at = mmapReserve(d.p, info.size, align, 0n);
    const prot = (info.flags & 1 ? 1 : 0) | (info.flags & 2 ? 2 : 0);
    const vaddr = d.p.mmap(info.size, { fd: d.fd, offset: info.offset, shared: true, addr: at, fixed: true, prot });
    if (vaddr < 0n) throw new Error(`mmap BAR${i}: ${vaddr}`);
    out.push({ index: i, info, vaddr });
  }
  return out;
}
