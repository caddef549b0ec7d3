/**
 * The iommufd commands 7.3 has beyond the ones with their own files
 * (include/uapi/linux/iommufd.h, the iommufd_ioctl_ops table of main.c):
 * IOMMU_HW_QUEUE_ALLOC (iommufd_hw_queue_alloc_ioctl: a vIOMMU type's
 * hardware queue, which the SMMUv3 vIOMMU here does not have) and
 * IOMMU_IOAS_NOIOMMU_GET_PA (-EOPNOTSUPP without CONFIG_IOMMUFD_NOIOMMU,
 * which this host, as the rig's kernel, lacks). Each with the table's size
 * rule. Refusals change nothing.
 */
import t from 'tap';
import { IommufdFile } from '../../src/iommufd/main.ts';
import { E2BIG, EINVAL, ENOENT, EOPNOTSUPP, EOVERFLOW } from '../../src/uapi/errno.ts';
import {
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
  IOMMU_IOAS_NOIOMMU_GET_PA,
  iommu_hw_queue_alloc,
  iommu_ioas_noiommu_get_pa,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct } from '../../src/uapi/struct.ts';
import { GPA, vm } from './smmu-vm.ts';

t.test('virt-smmuv3: IOMMU_HW_QUEUE_ALLOC checks flags/type, length and wrap, then the vIOMMU, which has no hardware queue of any type (-EOPNOTSUPP); IOAS_NOIOMMU_GET_PA is -EOPNOTSUPP (no CONFIG_IOMMUFD_NOIOMMU)', async (t) => {
  const v = vm();
  const { p, fd } = v;
  const ctx = (p.file(fd) as IommufdFile).ctx;
  const snapshot = () => [...ctx.objects.values()].map((o) => `${o.id}:${o.type}:${o.refs}`).join(' ');
  const before = snapshot();
  const hq = (f: Partial<Record<keyof typeof iommu_hw_queue_alloc.fields, number | bigint>>, size = iommu_hw_queue_alloc.size) =>
    p.ioctl(fd, IOMMU_HW_QUEUE_ALLOC, encodeStruct(iommu_hw_queue_alloc, { size, viommu_id: v.viommu, type: IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV, nesting_parent_iova: GPA, length: 4096, ...f }));
  t.equal(iommu_hw_queue_alloc.size, 40);
  t.equal(hq({}, 39), -EINVAL, 'size below offsetofend(length)');
  t.equal(hq({ flags: 1 }), -EOPNOTSUPP, 'flags');
  t.equal(hq({ type: 0 }), -EOPNOTSUPP, 'IOMMU_HW_QUEUE_TYPE_DEFAULT');
  t.equal(hq({ length: 0 }), -EINVAL, 'length 0');
  t.equal(hq({ nesting_parent_iova: 0xffff_ffff_ffff_f000n, length: 0x2000 }), -EOVERFLOW, 'base + length wraps');
  t.equal(hq({ viommu_id: 999 }), -ENOENT, 'no such vIOMMU');
  t.equal(hq({ viommu_id: v.ioas }), -ENOENT, 'an IOAS is no vIOMMU');
  t.equal(hq({}), -EOPNOTSUPP, 'the SMMUv3 vIOMMU has no HW queue (only the Tegra241 CMDQV extension does)');
  const long = new Uint8Array(48);
  long.set(encodeStruct(iommu_hw_queue_alloc, { size: 48, viommu_id: v.viommu, type: 1, length: 4096 }));
  long[44] = 1;
  t.equal(p.ioctl(fd, IOMMU_HW_QUEUE_ALLOC, long), -E2BIG, 'non-zero bytes past the struct');

  const pa = (f: Partial<Record<keyof typeof iommu_ioas_noiommu_get_pa.fields, number | bigint>>, size = iommu_ioas_noiommu_get_pa.size) =>
    p.ioctl(fd, IOMMU_IOAS_NOIOMMU_GET_PA, encodeStruct(iommu_ioas_noiommu_get_pa, { size, ioas_id: v.ioas, iova: GPA, length: 4096, ...f }));
  t.equal(iommu_ioas_noiommu_get_pa.size, 40);
  t.equal(pa({}, 32), -EINVAL, 'size below offsetofend(out_phys)');
  t.equal(pa({}), -EOPNOTSUPP, 'a mapped IOVA: still no no-IOMMU support');
  t.equal(pa({ ioas_id: 999, flags: 1 }), -EOPNOTSUPP);
  t.equal(snapshot(), before, 'nothing changed');
});
