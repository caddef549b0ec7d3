import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { EINVAL, ENOENT, EOPNOTSUPP } from '../../src/uapi/errno.ts';
import {
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  iommu_hwpt_alloc,
  iommu_hwpt_get_dirty_bitmap,
  iommu_hwpt_invalidate,
  iommu_hwpt_set_dirty_tracking,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import type { Process } from '../../src/host/process.ts';
import { bind, ioasAlloc, map, PAGE, setup } from './fixture.ts';

function hwptAlloc(p: Process, fd: number, devId: number, ptId: number, flags = 0): [number, number] {
  const b = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ptId });
  const r = p.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return [r, new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id')];
}
const setDirty = (p: Process, fd: number, hwpt: number, flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE, rsv = 0) =>
  p.ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, encodeStruct(iommu_hwpt_set_dirty_tracking, { size: iommu_hwpt_set_dirty_tracking.size, flags, hwpt_id: hwpt, __reserved: rsv }));
const getDirty = (p: Process, fd: number, hwpt: number, data: bigint, flags = 0) =>
  p.ioctl(
    fd,
    IOMMU_HWPT_GET_DIRTY_BITMAP,
    encodeStruct(iommu_hwpt_get_dirty_bitmap, { size: iommu_hwpt_get_dirty_bitmap.size, hwpt_id: hwpt, flags, iova: 0x10_0000n, length: BigInt(4 * PAGE), page_size: BigInt(PAGE), data }),
  );

t.test('dirty tracking: EOPNOTSUPP on a HWPT without it; flags/reserved EOPNOTSUPP; only paging HWPTs (ENOENT otherwise)', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const va = f.p.mmap(4 * PAGE);
  t.equal(map(f.p, f.fd, ioas, va, 4 * PAGE, 0x10_0000)[0], 0);
  const [, devId] = bind(f.p, f.fd, f.vdma.minor);
  const [r, hwpt] = hwptAlloc(f.p, f.fd, devId, ioas);
  t.equal(r, 0);
  t.equal(setDirty(f.p, f.fd, hwpt), -EOPNOTSUPP, 'no dirty tracking on this HWPT');
  t.equal(setDirty(f.p, f.fd, hwpt, 0), -EOPNOTSUPP, 'disable too');
  t.equal(setDirty(f.p, f.fd, hwpt, 2), -EOPNOTSUPP, 'unknown flag');
  t.equal(setDirty(f.p, f.fd, hwpt, 1, 1), -EOPNOTSUPP, 'reserved');
  t.equal(setDirty(f.p, f.fd, ioas), -ENOENT, 'an IOAS is not a HWPT');
  t.equal(setDirty(f.p, f.fd, 99), -ENOENT);
  const bm = f.p.mmap(PAGE);
  t.equal(getDirty(f.p, f.fd, hwpt, bm), -EOPNOTSUPP);
  t.equal(getDirty(f.p, f.fd, hwpt, bm, 2), -EOPNOTSUPP, 'unknown flag');
  t.equal(getDirty(f.p, f.fd, devId, bm), -ENOENT, 'a device is not a HWPT');
  t.end();
});

t.test('virt-smmuv3: HWPT_ALLOC with DIRTY_TRACKING on a NEST_PARENT is EOPNOTSUPP (a stage-2 domain tracks no dirt) and leaves no object', async (t) => {
  const m = createMachine('virt-smmuv3', { ramBytes: 256 * 2 ** 20 });
  const p = m.host.spawn();
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [, devId] = bind(p, fd, 0);
  t.equal(hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_NEST_PARENT)[0], -EOPNOTSUPP);
  t.equal(ioasAlloc(p, fd), devId + 1, 'the next ID was not consumed');
});

t.test('HWPT_INVALIDATE: EINVAL on a paging HWPT, ENOENT unknown, EINVAL for entries without a pointer; entry_num reports 0 done', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const [, devId] = bind(f.p, f.fd, f.vdma.minor);
  const [, hwpt] = hwptAlloc(f.p, f.fd, devId, ioas);
  const inv = (id: number, num: number, uptr: bigint, len = 16, rsv = 0) => {
    const b = encodeStruct(iommu_hwpt_invalidate, { size: iommu_hwpt_invalidate.size, hwpt_id: id, data_uptr: uptr, data_type: 0, entry_len: len, entry_num: num, __reserved: rsv });
    return [f.p.ioctl(f.fd, IOMMU_HWPT_INVALIDATE, b), new StructView(iommu_hwpt_invalidate, b).num('entry_num')];
  };
  const buf = f.p.mmap(PAGE);
  t.same(inv(hwpt, 1, buf), [-EINVAL, 0], 'a paging HWPT takes no user invalidation');
  t.same(inv(99, 1, buf), [-ENOENT, 0]);
  t.same(inv(hwpt, 2, 0n), [-EINVAL, 0], 'entries but a null pointer');
  t.same(inv(hwpt, 2, buf, 0), [-EINVAL, 0], 'entries of length 0');
  t.same(inv(hwpt, 1, buf, 16, 1)[0], -EOPNOTSUPP, 'reserved');
  t.end();
});

t.test('HWPT_ALLOC: the minimum size ends at __reserved (main.c iommufd_ioctl_ops), what is not passed reads as 0; __reserved2 is not checked (iommufd_hwpt_alloc)', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const [, devId] = bind(f.p, f.fd, f.vdma.minor);
  const b = encodeStruct(iommu_hwpt_alloc, { size: 24, dev_id: devId, pt_id: ioas, data_type: 7, data_len: 9 });
  t.equal(f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, b.subarray(0, 24)), 0, 'a 24-byte struct (the data fields past it are not read)');
  t.ok(new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id') > ioas);
  const r2 = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, dev_id: devId, pt_id: ioas, __reserved2: 1 });
  t.equal(f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, r2), 0, '__reserved2 set');
  t.end();
});

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: GET_HW_INFO takes IOMMU_HW_INFO_FLAG_INPUT_TYPE: DEFAULT or the IOMMU's own type gets its info (iommufd_get_hw_info, ${kind === 'q35-vtd' ? 'intel_iommu_hw_info' : 'arm_smmu_hw_info'})`, async (t) => {
    const { IOMMU_GET_HW_INFO, IOMMU_HW_INFO_FLAG_INPUT_TYPE, IOMMU_HW_INFO_TYPE_ARM_SMMUV3, IOMMU_HW_INFO_TYPE_INTEL_VTD, iommu_hw_info } = await import('../../src/uapi/iommufd.ts');
    const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
    const p = m.host.spawn();
    const fd = p.open('/dev/iommu');
    const [, devId] = bind(p, fd, 0);
    const own = kind === 'q35-vtd' ? IOMMU_HW_INFO_TYPE_INTEL_VTD : IOMMU_HW_INFO_TYPE_ARM_SMMUV3;
    const buf = p.mmap(PAGE);
    const info = (flags: number, inType: number): [number, number, number] => {
      const b = encodeStruct(iommu_hw_info, { size: iommu_hw_info.size, flags, dev_id: devId, data_len: 64, data_uptr: buf, out_data_type: inType });
      const r = p.ioctl(fd, IOMMU_GET_HW_INFO, b);
      const v = new StructView(iommu_hw_info, b);
      return [r, v.num('out_data_type'), v.num('data_len')];
    };
    const plain = info(0, 77);
    t.same(plain.slice(0, 2), [0, own], 'without the flag the input type is ignored');
    t.same(info(IOMMU_HW_INFO_FLAG_INPUT_TYPE, 0), plain, 'INPUT_TYPE DEFAULT');
    t.same(info(IOMMU_HW_INFO_FLAG_INPUT_TYPE, own), plain, 'INPUT_TYPE of its own kind');
    t.equal(info(IOMMU_HW_INFO_FLAG_INPUT_TYPE, 77)[0], -EOPNOTSUPP, 'a type the driver does not know');
  });
}
