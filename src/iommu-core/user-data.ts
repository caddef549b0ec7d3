import { EINVAL } from '../uapi/errno.ts';

/**
 * __iommu_copy_struct_from_user() (include/linux/iommu.h), the rule every
 * IOMMU driver applies to a vendor struct from iommufd (HWPT_ALLOC data, one
 * entry of an HWPT_INVALIDATE array): the user's `data` must be at least
 * `minLen` bytes (offsetofend of the struct's first version's last field)
 * and at most the driver's `size` (sizeof the struct): -EINVAL otherwise,
 * whatever the extra bytes hold. A shorter one is zero-extended, as
 * copy_struct_from_user does. Returns the `size`-byte struct or -EINVAL.
 *
 * (iommu_copy_struct_from_full_user_array, which the SMMUv3 vIOMMU uses for
 * its invalidation array, is different: longer entries are accepted when the
 * tail is zero.)
 */
export function iommuCopyStructFromUser(data: Uint8Array, size: number, minLen = size): Uint8Array | number {
  if (data.length < minLen || data.length > size) return -EINVAL;
  if (data.length === size) return data;
  const out = new Uint8Array(size);
  out.set(data);
  return out;
}
