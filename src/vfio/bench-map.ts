import type { Host } from '../host/host.ts';
import { VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU } from '../uapi/vfio.ts';
import { VfioClient } from './client.ts';
import { vfioModule } from './module.ts';

/** Timed maps of the 2M-backed region; the best is kept. */
const HUGE_ROUNDS = 5;

/** The figures of MAP_DMA of one region backed by 2M pages versus by scattered 4K pages. */
export interface MapBenchFigures {
  size: number;
  /** Leaf entries written into the IOMMU page table. */
  ptes2m: number;
  ptes4k: number;
  /** iommu_map() calls VFIO made. */
  mapCalls2m: number;
  mapCalls4k: number;
  /** Host milliseconds of the MAP_DMA ioctl. */
  ms2m: number;
  ms4k: number;
  /** ms4k / ms2m: how much the one-call-per-run rule saves. */
  timeRatio: number;
}

/**
 * For `npm run bench` (figures vfio.map1g.2m_vs_4k.time_ratio,
 * vfio.map1g.2m.ptes, vfio.map1g.2m.map_calls): map `size` bytes (1 GiB by
 * default) through VFIO into the group's domain, once from 2M huge pages and
 * once from 4K pages that were faulted in interleaved with another region so
 * no two neighbours are physically contiguous (as on a fragmented host); the
 * 2M map is timed five times and its best kept. The host needs about 2.5 x
 * `size` of RAM; the clock is the caller's (the core reads no wall clock).
 */
export function benchMap(host: Host, groupId: number, now: () => number, size = 2 ** 30): MapBenchFigures {
  const mod = vfioModule(host);
  const p = host.spawn({ memlockLimit: 2n ** 62n, capIpcLock: true });
  const v = new VfioClient(p);
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${groupId}`);
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, c, true);
  if (c < 0 || g < 0 || p.ioctl(g, VFIO_GROUP_SET_CONTAINER, fd) < 0 || p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
    p.exit();
    throw new Error(`benchMap: cannot open group ${groupId}`);
  }
  const iommuGroup = host.iommu.groups.find((x) => x.id === groupId)!;
  const leaves = () => iommuGroup.domain?.driver.stats?.leafWrites ?? 0;
  const calls = () => mod.counters.mapCalls.value;
  const iova = 2n ** 32n;

  // Warm both paths up on a small region first, so neither timed map pays for JIT compilation.
  const warmSize = Math.min(size, 32 * 2 ** 20);
  for (const hugepage of ['2M', undefined] as const) {
    const w = p.mmap(warmSize, { hugepage, populate: true });
    if (v.mapDma(c, { vaddr: w, iova, size: warmSize }) === 0) v.unmapDma(c, { iova, size: warmSize });
    p.munmap(w, warmSize);
  }

  // The 2M map takes about a millisecond, so one slow stretch of a shared host decides a single timing of it:
  // it is timed HUGE_ROUNDS times (map, unmap) and the best kept. The 4K map takes a hundred times longer.
  const huge = p.mmap(size, { hugepage: '2M', populate: true });
  let ms2m = Infinity;
  let ptes2m = 0;
  let mapCalls2m = 0;
  for (let r = 0; r < HUGE_ROUNDS; r++) {
    const l0 = leaves();
    const c0 = calls();
    const t0 = now();
    if (v.mapDma(c, { vaddr: huge, iova, size }) !== 0) throw new Error('benchMap: 2M map failed');
    ms2m = Math.min(ms2m, now() - t0);
    ptes2m = leaves() - l0;
    mapCalls2m = calls() - c0;
    v.unmapDma(c, { iova, size });
  }
  p.munmap(huge, size);

  const a = p.mmap(size);
  const b = p.mmap(size);
  for (let off = 0; off < size; off += 4096) {
    p.memRead(a + BigInt(off), 1);
    p.memRead(b + BigInt(off), 1);
  }
  p.munmap(b, size);
  const l0 = leaves();
  const c0 = calls();
  const t0 = now();
  if (v.mapDma(c, { vaddr: a, iova, size }) !== 0) throw new Error('benchMap: 4K map failed');
  const ms4k = now() - t0;
  const ptes4k = leaves() - l0;
  const mapCalls4k = calls() - c0;
  p.exit();
  return { size, ptes2m, ptes4k, mapCalls2m, mapCalls4k, ms2m, ms4k, timeRatio: ms2m > 0 ? ms4k / ms2m : Infinity };
}
