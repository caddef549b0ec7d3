import { machineBuilder } from '../machines/builder.ts';
import type { MachineKind } from '../machines/layout.ts';
import type { Process } from '../src/host/process.ts';
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
} from '../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_TYPE1v2_IOMMU } from '../src/uapi/vfio.ts';
import { VfioClient } from '../src/vfio/client.ts';
import { vfioModule } from '../src/vfio/module.ts';
import type { Figures } from './harness.ts';

const PAGE = 4096;
const BASE = 0x1_0000_0000;
/** Map+unmap pairs timed per round, and rounds per size (alternating sizes, best round kept). */
const OPS = 500;
const ROUNDS = 25;

/**
 * One address space of 4 KiB mappings as a VMM drives it through the uapi:
 * `populate` puts `n` live mappings at the even pages of a range; `mapUnmap`
 * maps and unmaps one 4 KiB page at an odd page between them (so every
 * lookup goes through the whole structure), returning 0 or an errno.
 */
interface MappingSpace {
  mapPage(iova: number): number;
  unmapPage(iova: number): number;
}

/** VFIO type1v2: a container with one group; every mapping is MAP_DMA of one page of the same buffer. */
function vfioSpace(p: Process, group: number): MappingSpace {
  const v = new VfioClient(p);
  const container = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${group}`);
  if (v.setContainer(g, container) !== 0 || v.setIommu(container, VFIO_TYPE1v2_IOMMU) !== 0) throw new Error('VFIO setup');
  const buf = p.mmap(PAGE);
  p.memWrite(buf, new Uint8Array([1]));
  return {
    mapPage: (iova) => v.mapDma(container, { vaddr: buf, iova: BigInt(iova), size: PAGE }),
    unmapPage: (iova) => {
      const r = v.unmapDma(container, { iova: BigInt(iova), size: PAGE });
      return typeof r === 'bigint' ? 0 : r;
    },
  };
}

/** iommufd: an IOAS with one device attached (so a domain is filled); every mapping is IOAS_MAP of one page. */
function iommufdSpace(p: Process, iommufd: number, cdevMinor: number): MappingSpace {
  const a = encodeStruct(iommu_ioas_alloc, { size: iommu_ioas_alloc.size });
  if (p.ioctl(iommufd, IOMMU_IOAS_ALLOC, a) < 0) throw new Error('IOAS_ALLOC');
  const ioas = new StructView(iommu_ioas_alloc, a).num('out_ioas_id');
  const cdev = p.open(`/dev/vfio/devices/vfio${cdevMinor}`);
  const bind = encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd });
  const attach = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, pt_id: ioas });
  if (p.ioctl(cdev, VFIO_DEVICE_BIND_IOMMUFD, bind) < 0 || p.ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach) < 0) throw new Error('bind/attach');
  const buf = p.mmap(PAGE);
  p.memWrite(buf, new Uint8Array([1]));
  const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
  return {
    mapPage: (iova) =>
      p.ioctl(iommufd, IOMMU_IOAS_MAP, encodeStruct(iommu_ioas_map, { size: iommu_ioas_map.size, flags, ioas_id: ioas, user_va: buf, length: PAGE, iova })),
    unmapPage: (iova) =>
      p.ioctl(iommufd, IOMMU_IOAS_UNMAP, encodeStruct(iommu_ioas_unmap, { size: iommu_ioas_unmap.size, ioas_id: ioas, iova: BigInt(iova), length: BigInt(PAGE) })),
  };
}

function populate(s: MappingSpace, n: number): void {
  for (let i = 0; i < n; i++) {
    const r = s.mapPage(BASE + 2 * i * PAGE);
    if (r !== 0) throw new Error(`populate ${i}: ${r}`);
  }
}

/** Seconds per map+unmap pair at odd pages spread over the populated range (a fixed stride, deterministic). */
function perOp(s: MappingSpace, n: number): number {
  const stride = 7919; // prime: the pairs visit the range in a scattered order
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < OPS; k++) {
    const iova = BASE + (2 * ((k * stride) % n) + 1) * PAGE;
    if (s.mapPage(iova) !== 0 || s.unmapPage(iova) !== 0) throw new Error(`map/unmap at ${iova.toString(16)}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9 / OPS;
}

/** Best-of-rounds cost per op with `small` and `large` live mappings, rounds alternating between the two. */
function ratio(small: MappingSpace, large: MappingSpace, nSmall: number, nLarge: number): { ratio: number; small: number; large: number } {
  perOp(small, nSmall); // warm the JIT on both paths before timing either
  perOp(large, nLarge);
  let bs = Infinity;
  let bl = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    bs = Math.min(bs, perOp(small, nSmall));
    bl = Math.min(bl, perOp(large, nLarge));
  }
  return { ratio: bl / bs, small: bs, large: bl };
}

/**
 * Map+unmap cost per operation with 100,000 live 4 KiB mappings against
 * 1,000, through VFIO MAP_DMA/UNMAP_DMA and through iommufd IOAS_MAP/UNMAP,
 * on one machine: four test devices, each its own group (two VFIO
 * containers, two IOASes). The structures behind them (VFIO's DMA tree,
 * the IOAS interval tree, the IOMMU page table) must grow logarithmically.
 */
export function mappingFigures(kind: MachineKind = 'virt-smmuv3', nSmall = 1_000, nLarge = 100_000): Figures {
  const m = machineBuilder(kind).testDevice('00:01.0').testDevice('00:02.0').testDevice('00:03.0').testDevice('00:04.0').build({ ramBytes: 2 ** 30 });
  // 100,000 mappings exceed type1's default dma_entry_limit (65535): raise it, as an admin writes
  // /sys/module/vfio_iommu_type1/parameters/dma_entry_limit before the VMM opens its containers.
  vfioModule(m.host).dmaEntryLimit = 2 * nLarge;
  const p = m.host.spawn({ capIpcLock: true });
  const group = (bdf: string) => m.host.iommu.groupOf(m.device(bdf))!.id;
  const vSmall = vfioSpace(p, group('00:01.0'));
  const vLarge = vfioSpace(p, group('00:02.0'));
  populate(vSmall, nSmall);
  populate(vLarge, nLarge);
  const v = ratio(vSmall, vLarge, nSmall, nLarge);

  const iommufd = p.open('/dev/iommu');
  const minor = (bdf: string) => Number((p.readdir(`/sys/bus/pci/devices/${m.device(bdf).bdf}/vfio-dev`) as string[])[0]!.slice(4));
  const iSmall = iommufdSpace(p, iommufd, minor('00:03.0'));
  const iLarge = iommufdSpace(p, iommufd, minor('00:04.0'));
  populate(iSmall, nSmall);
  populate(iLarge, nLarge);
  const i = ratio(iSmall, iLarge, nSmall, nLarge);

  const us = (s: number) => Math.round(s * 1e7) / 10;
  return {
    'mappings.100k_vs_1k.per_op_ratio': { value: v.ratio, unit: 'ratio', target: '<= 2 (VFIO MAP_DMA+UNMAP_DMA, 4 KiB)' },
    'mappings.vfio.100k.per_op_us': { value: us(v.large), unit: 'us', target: `orientation (1k: ${us(v.small)} us)` },
    'mappings.iommufd.100k_vs_1k.per_op_ratio': { value: i.ratio, unit: 'ratio', target: '<= 2 (IOAS_MAP+IOAS_UNMAP, 4 KiB)' },
    'mappings.iommufd.100k.per_op_us': { value: us(i.large), unit: 'us', target: `orientation (1k: ${us(i.small)} us)` },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  console.log(mappingFigures((process.argv[2] as MachineKind | undefined) ?? 'virt-smmuv3'));
  console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
