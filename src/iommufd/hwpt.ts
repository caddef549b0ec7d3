/**
 * HWPT ioctls beyond allocation (drivers/iommu/iommufd/hw_pagetable.c and
 * io_pagetable.c): HWPT_SET_DIRTY_TRACKING and HWPT_GET_DIRTY_BITMAP on
 * paging HWPTs (-EOPNOTSUPP unless the HWPT was allocated with
 * IOMMU_HWPT_ALLOC_DIRTY_TRACKING and its driver implements dirty tracking),
 * and HWPT_INVALIDATE on nested HWPTs (handed to the domain's
 * cacheInvalidateUser; -EOPNOTSUPP where there is none) and on vIOMMUs
 * (handed to the driver's vIOMMU cache_invalidate).
 */
import { EFAULT, EINVAL, EOPNOTSUPP, EOVERFLOW } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import {
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  type iommu_hwpt_get_dirty_bitmap,
  type iommu_hwpt_invalidate,
  type iommu_hwpt_set_dirty_tracking,
} from '../uapi/iommufd.ts';
import type { StructView } from '../uapi/struct.ts';
import { IOVA_MAX, PAGE } from './pages.ts';
import type { Respond } from './ioas.ts';
import { HwptNested, type HwptPaging, type IommufdCtx } from './objects.ts';
import { Viommu } from './viommu.ts';

/** IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX (hw_pagetable.c). */
const HWPT_INVALIDATE_ENTRY_NUM_MAX = 2 ** 19;

type View<D> = D extends { fields: Readonly<Record<infer F extends string, unknown>> } ? StructView<F> : never;

/**
 * iopt_set_dirty_tracking(): enabling first clears the dirty state of every
 * mapped area (iopt_clear_dirty_data, then one flush per area inside the
 * driver), so the user sees the writes from now on; then the driver's
 * set_dirty_tracking. Like the kernel, enabling twice clears again.
 */
export function setDirtyTracking(ctx: IommufdCtx, v: View<typeof iommu_hwpt_set_dirty_tracking>, respond: Respond): number {
  const flags = v.num('flags');
  if ((flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0 || v.num('__reserved') !== 0) return -EOPNOTSUPP;
  const hwpt = ctx.get<HwptPaging>(v.num('hwpt_id'), 'hwpt_paging');
  if (typeof hwpt === 'number') return hwpt;
  const drv = hwpt.domain.driver;
  if (!hwpt.dirtyTracking || drv.setDirtyTracking === undefined) return -EOPNOTSUPP;
  const enable = (flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
  if (enable && drv.readAndClearDirty !== undefined) {
    for (const n of hwpt.ioas.iopt.areas.all()) {
      const r = drv.readAndClearDirty(n.value.iova, n.value.length, false);
      if (r < 0) return r;
    }
  }
  const r = drv.setDirtyTracking(enable);
  if (r < 0) return r;
  return respond();
}

export function getDirtyBitmap(ctx: IommufdCtx, v: View<typeof iommu_hwpt_get_dirty_bitmap>, _respond: Respond, proc: Process): number {
  const flags = v.num('flags');
  if ((flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0 || v.num('__reserved') !== 0) return -EOPNOTSUPP;
  const hwpt = ctx.get<HwptPaging>(v.num('hwpt_id'), 'hwpt_paging');
  if (typeof hwpt === 'number') return hwpt;
  const iova64 = v.big('iova');
  const len64 = v.big('length');
  const pgsz64 = v.big('page_size');
  const iopt = hwpt.ioas.iopt;
  // iopt_read_and_clear_dirty_data(): iommufd_check_iova_range() first, then the domain's dirty ops.
  const r0 = checkIovaRange(iopt.iovaAlignment, iova64, len64, pgsz64);
  if (r0 < 0) return r0;
  const drv = hwpt.domain.driver;
  // iommu_read_and_clear_dirty(): no dirty_ops (a HWPT allocated without DIRTY_TRACKING) is -EOPNOTSUPP.
  if (!hwpt.dirtyTracking || drv.readAndClearDirty === undefined) return -EOPNOTSUPP;
  // A range no area can cover (beyond this IOAS's IOVA space; or iova 0 with length 0, which the
  // range check lets through as [0, U64_MAX]) fails the contiguous-area walk: -EINVAL.
  if (iova64 + len64 - 1n > BigInt(IOVA_MAX) || len64 === 0n) return -EINVAL;
  const iova = Number(iova64);
  const length = Number(len64);
  const pieces = iopt.getPieces(iova, length);
  if (typeof pieces === 'number') return -EINVAL; // the range must be mapped contiguously
  // iova_bitmap_alloc() takes pgshift = __ffs(page_size): one bit per the lowest set bit's size.
  const pgsz = Number(pgsz64 & -pgsz64);
  const nbits = length / pgsz;
  const nbytes = Math.ceil(nbits / 64) * 8;
  const uptr = v.big('data');
  const bitmap = proc.copyFromUser(uptr, nbytes);
  if (typeof bitmap === 'number') return -EFAULT;
  const r = drv.readAndClearDirty(iova, length, (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0, (at, size) => {
    const first = Math.max(0, Math.floor((at - iova) / pgsz));
    const last = Math.min(nbits - 1, Math.floor((at + size - 1 - iova) / pgsz));
    for (let b = first; b <= last; b++) bitmap[b >> 3]! |= 1 << (b & 7);
  });
  if (r < 0) return r;
  return proc.copyToUser(uptr, bitmap) < 0 ? -EFAULT : 0;
}

/**
 * iommufd_check_iova_range() (io_pagetable.c): iova + length - 1 must not
 * wrap u64 nor pass ULONG_MAX (-EOVERFLOW); both ends aligned to the IOAS's
 * iova_alignment, a non-zero page_size, both ends aligned to it (-EINVAL).
 */
function checkIovaRange(alignment: number, iova: bigint, length: bigint, pageSize: bigint): number {
  const U64 = 0xffff_ffff_ffff_ffffn;
  const last = iova + ((length - 1n) & U64);
  if (last > U64) return -EOVERFLOW; // check_add_overflow; ULONG_MAX is U64_MAX on a 64-bit kernel
  const end = (last + 1n) & U64;
  const align = BigInt(alignment) - 1n;
  if ((iova & align) !== 0n || (end & align) !== 0n) return -EINVAL;
  if (pageSize === 0n) return -EINVAL;
  const pmask = pageSize - 1n;
  if ((iova & pmask) !== 0n || (end & pmask) !== 0n) return -EINVAL;
  return 0;
}

export function hwptInvalidate(ctx: IommufdCtx, v: View<typeof iommu_hwpt_invalidate>, respond: Respond, proc: Process): number {
  const num = v.num('entry_num');
  const len = v.num('entry_len');
  let rc = 0;
  let done = 0;
  // Every refusal still reports entry_num (0 here) back, as iommufd_hwpt_invalidate's "out:" does.
  if (v.num('__reserved') !== 0) rc = -EOPNOTSUPP;
  // Bounded so that one call cannot pin the CPU: entry_len at most PAGE_SIZE, entry_num at most 1 << 19.
  else if (num !== 0 && (v.big('data_uptr') === 0n || len === 0 || len > PAGE || num > HWPT_INVALIDATE_ENTRY_NUM_MAX)) rc = -EINVAL;
  else {
    const obj = ctx.get(v.num('hwpt_id'));
    const copy = (): Uint8Array | number => {
      const d = num === 0 ? new Uint8Array(0) : proc.copyFromUser(v.big('data_uptr'), len * num);
      return typeof d === 'number' ? -EFAULT : d;
    };
    if (typeof obj === 'number') rc = obj;
    else if (obj instanceof Viommu) {
      // viommu->ops->cache_invalidate: the driver copies the array when it is ready for it.
      const r = obj.driver.cacheInvalidate(v.num('data_type'), len, num, copy);
      done = r.done;
      rc = r.err;
    } else if (!(obj instanceof HwptNested)) rc = -EINVAL;
    else if (obj.domain.driver.cacheInvalidateUser === undefined) rc = -EOPNOTSUPP;
    else {
      const data = copy();
      if (typeof data === 'number') rc = data;
      else {
        const r = obj.domain.driver.cacheInvalidateUser(v.num('data_type'), data, len, num);
        done = r.done;
        rc = r.err;
      }
    }
  }
  // The count of handled entries is reported back even on error.
  v.setNum('entry_num', done);
  if (respond() < 0) return -EFAULT;
  return rc;
}
