import { EACCES, EFAULT, EINVAL, ENOTTY } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import { StructView } from '../uapi/struct.ts';
import {
  DIRTY_BITMAP_SIZE_MAX,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_BIND_PID,
  VFIO_IOMMU_BIND_PROCESS,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNBIND,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  vfio_bitmap,
  vfio_iommu_type1_bind,
  vfio_iommu_type1_bind_process,
  vfio_iommu_type1_dirty_bitmap,
  vfio_iommu_type1_dirty_bitmap_get,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iommu_type1_info_cap_migration,
  vfio_iommu_type1_info_dma_avail,
  vfio_iova_range,
} from '../uapi/vfio.ts';
import { accessOk, dirtyStart, dirtyStop, ffs64, iovaDirtyBitmap, verifyBitmapSize } from './dirty.ts';
import { doMap } from './dma-map.ts';
import { doUnmap } from './dma-unmap.ts';
import { InfoCaps, writeInfo } from './info-caps.ts';
import type { VfioIommu } from './type1.ts';
import { head, UserArg } from './user-arg.ts';

/** vfio_iommu_type1_check_extension(); `iommu` is undefined before SET_IOMMU. */
export function type1CheckExtension(iommu: VfioIommu | undefined, ext: number): number {
  switch (ext) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      return 1;
    case VFIO_UPDATE_VADDR:
      return iommu !== undefined ? 1 : 0;
    case VFIO_DMA_CC_IOMMU:
      return iommu === undefined ? 0 : iommu.haveEnforceCacheCoherency() ? 1 : 0;
    default:
      return 0;
  }
}

/** vfio_iommu_type1_ioctl(). */
export function type1Ioctl(iommu: VfioIommu, request: number, arg: Uint8Array | number, proc: Process): number {
  if (request === VFIO_CHECK_EXTENSION) return typeof arg === 'number' ? type1CheckExtension(iommu, arg) : -EINVAL;
  const u = UserArg.of(arg, proc);
  if (typeof u === 'number') return u;
  switch (request) {
    case VFIO_IOMMU_GET_INFO:
      return getInfo(iommu, u);
    case VFIO_IOMMU_MAP_DMA:
      return mapDma(iommu, u, proc);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(iommu, u, proc);
    case VFIO_IOMMU_DIRTY_PAGES:
      return dirtyPages(iommu, u, proc);
    case VFIO_IOMMU_BIND:
    case VFIO_IOMMU_UNBIND:
      return bindIoctl(iommu, u, proc, request === VFIO_IOMMU_BIND);
    default:
      return -ENOTTY;
  }
}


function getInfo(iommu: VfioIommu, u: UserArg): number {
  const minsz = 16; // offsetofend(struct vfio_iommu_type1_info, iova_pgsizes)
  const info = head(u, vfio_iommu_type1_info, minsz);
  if (typeof info === 'number') return info;
  const argsz = info.num('argsz');
  if (argsz < minsz) return -EINVAL;
  const copySz = Math.min(argsz, vfio_iommu_type1_info.size);
  info.setNum('flags', VFIO_IOMMU_INFO_PGSIZES);
  info.setBig('iova_pgsizes', iommu.pgsizeBitmap);
  info.setNum('cap_offset', 0);
  const caps = new InfoCaps();
  const mig = caps.addStruct(vfio_iommu_type1_info_cap_migration, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1);
  mig.view.setNum('flags', 0);
  mig.view.setBig('pgsize_bitmap', BigInt(iommu.minPageSize));
  mig.view.setBig('max_dirty_bitmap_size', BigInt(DIRTY_BITMAP_SIZE_MAX));
  caps.addStruct(vfio_iommu_type1_info_dma_avail, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1).view.setNum('avail', iommu.dmaAvail);
  const ranges = iommu.iovaList;
  if (ranges.length > 0) {
    const cap = caps.addStruct(vfio_iommu_type1_info_cap_iova_range, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, ranges.length * vfio_iova_range.size);
    cap.view.setNum('nr_iovas', ranges.length);
    ranges.forEach((r, i) => {
      const v = new StructView(vfio_iova_range, cap.bytes.subarray(vfio_iommu_type1_info_cap_iova_range.size + i * vfio_iova_range.size));
      v.setBig('start', r.start);
      v.setBig('end', endToU64(r.end));
    });
  }
  info.setNum('flags', VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
  return writeInfo(u, info, copySz, caps);
}

/** An aperture end kept as a number (2^k - 1 rounds to 2^k past 2^53) back to its exact u64. */
function endToU64(end: number): bigint {
  if (end < Number.MAX_SAFE_INTEGER) return BigInt(end);
  const b = BigInt(end);
  return (b & (b - 1n)) === 0n ? b - 1n : b;
}

function mapDma(iommu: VfioIommu, u: UserArg, proc: Process): number {
  const m = head(u, vfio_iommu_type1_dma_map);
  if (typeof m === 'number') return m;
  const mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
  if (m.num('argsz') < vfio_iommu_type1_dma_map.size || (m.num('flags') & ~mask) !== 0) return -EINVAL;
  return doMap(iommu, proc, m.num('flags'), m.big('vaddr'), m.big('iova'), m.big('size'));
}

function unmapDma(iommu: VfioIommu, u: UserArg, proc: Process): number {
  const minsz = vfio_iommu_type1_dma_unmap.size;
  const m = head(u, vfio_iommu_type1_dma_unmap);
  if (typeof m === 'number') return m;
  const flags = m.num('flags');
  const mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL;
  if (m.num('argsz') < minsz || (flags & ~mask) !== 0) return -EINVAL;
  const wantBitmap = (flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
  if (wantBitmap && (flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)) !== 0) return -EINVAL;
  let bitmap: { pgsize: bigint; data: number } | undefined;
  if (wantBitmap) {
    if (m.num('argsz') < minsz + vfio_bitmap.size) return -EINVAL;
    const bytes = u.read(minsz, vfio_bitmap.size);
    if (typeof bytes === 'number') return bytes;
    const b = new StructView(vfio_bitmap, bytes);
    if (!accessOk(iommu.host, b.big('data'), b.big('size'))) return -EINVAL;
    const shift = ffs64(b.big('pgsize'));
    if (shift < 0) return -EINVAL;
    const r = verifyBitmapSize(m.big('size') >> BigInt(shift), b.big('size'));
    if (r < 0) return r;
    bitmap = { pgsize: b.big('pgsize'), data: Number(b.big('data')) };
  }
  const [ret, unmapped] = doUnmap(iommu, proc, flags, m.big('iova'), m.big('size'), bitmap);
  if (ret < 0) return ret;
  m.setBig('size', unmapped);
  return u.write(0, m.bytes) < 0 ? -EFAULT : 0;
}

function dirtyPages(iommu: VfioIommu, u: UserArg, proc: Process): number {
  if (!iommu.v2) return -EACCES;
  const minsz = vfio_iommu_type1_dirty_bitmap.size;
  const d = head(u, vfio_iommu_type1_dirty_bitmap);
  if (typeof d === 'number') return d;
  const flags = d.num('flags');
  const mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP | VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
  if (d.num('argsz') < minsz || (flags & ~mask) !== 0) return -EINVAL;
  // Only one of the flags at a time.
  if (flags === 0 || (flags & (flags - 1)) !== 0) return -EINVAL;
  if (flags === VFIO_IOMMU_DIRTY_PAGES_FLAG_START) return dirtyStart(iommu);
  if (flags === VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
    dirtyStop(iommu);
    return 0;
  }
  const dataSize = d.num('argsz') - minsz;
  if (dataSize < vfio_iommu_type1_dirty_bitmap_get.size) return -EINVAL;
  const bytes = u.read(minsz, vfio_iommu_type1_dirty_bitmap_get.size);
  if (typeof bytes === 'number') return bytes;
  const g = new StructView(vfio_iommu_type1_dirty_bitmap_get, bytes);
  const iova = g.big('iova');
  const size = g.big('size');
  if (iova + size >= 1n << 64n) return -EINVAL;
  if (!accessOk(iommu.host, g.big('bitmap_data'), g.big('bitmap_size'))) return -EINVAL;
  const shift = ffs64(g.big('bitmap_pgsize'));
  if (shift < 0) return -EINVAL;
  const r = verifyBitmapSize(size >> BigInt(shift), g.big('bitmap_size'));
  if (r < 0) return r;
  const pgsize = iommu.minPageSize;
  if (g.big('bitmap_pgsize') !== BigInt(pgsize)) return -EINVAL;
  if (iova % BigInt(pgsize) !== 0n || size === 0n || size % BigInt(pgsize) !== 0n) return -EINVAL;
  if (!iommu.dirtyTracking) return -EINVAL;
  if (iova + size > BigInt(Number.MAX_SAFE_INTEGER)) return 0;
  return iovaDirtyBitmap(iommu, proc, Number(g.big('bitmap_data')), Number(iova), Number(size), pgsize);
}

function bindIoctl(iommu: VfioIommu, u: UserArg, proc: Process, bind: boolean): number {
  const minsz = vfio_iommu_type1_bind.size;
  const b = head(u, vfio_iommu_type1_bind);
  if (typeof b === 'number') return b;
  if (b.num('argsz') < minsz) return -EINVAL;
  if (b.num('flags') !== VFIO_IOMMU_BIND_PROCESS) return -EINVAL;
  if (b.num('argsz') < minsz + vfio_iommu_type1_bind_process.size) return -EINVAL;
  const bytes = u.read(minsz, vfio_iommu_type1_bind_process.size);
  if (typeof bytes === 'number') return bytes;
  const p = new StructView(vfio_iommu_type1_bind_process, bytes);
  const flags = p.num('flags');
  if ((flags & ~VFIO_IOMMU_BIND_PID) !== 0) return -EINVAL;
  const target = iommu.sva.targetOf(proc, (flags & VFIO_IOMMU_BIND_PID) !== 0, p.num('pid'));
  if (typeof target === 'number') return target;
  if (!bind) return iommu.sva.unbind(target);
  const had = iommu.sva.isBound(target);
  const pasid = iommu.sva.bind(target);
  if (pasid < 0) return pasid;
  p.setNum('pasid', pasid);
  if (u.write(minsz, bytes) < 0) {
    if (!had) iommu.sva.unbind(target);
    return -EFAULT;
  }
  return 0;
}
