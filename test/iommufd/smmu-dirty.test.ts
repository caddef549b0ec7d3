import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { EINVAL, ENOENT, EOPNOTSUPP } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import {
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  iommu_hw_info,
  iommu_hwpt_alloc,
  iommu_hwpt_get_dirty_bitmap,
  iommu_hwpt_set_dirty_tracking,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { attach, bind, ioasAlloc, map, PAGE } from './fixture.ts';

const IOVA = 0x10_0000;
const PAGES = 8;

const setDirty = (p: Process, fd: number, hwpt: number, on: boolean, rsv = 0) =>
  p.ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, encodeStruct(iommu_hwpt_set_dirty_tracking, {
    size: iommu_hwpt_set_dirty_tracking.size, flags: on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, hwpt_id: hwpt, __reserved: rsv,
  }));

/** GET_DIRTY_BITMAP over the 8 mapped pages: [result, dirty page indexes]. */
function dirty(p: Process, fd: number, hwpt: number, bm: bigint, flags = 0, length = PAGES * PAGE): [number, number[]] {
  p.memWrite(bm, new Uint8Array(8));
  const r = p.ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, encodeStruct(iommu_hwpt_get_dirty_bitmap, {
    size: iommu_hwpt_get_dirty_bitmap.size, hwpt_id: hwpt, flags, iova: BigInt(IOVA), length: BigInt(length), page_size: BigInt(PAGE), data: bm,
  }));
  const bits = p.memRead(bm, 1) as Uint8Array;
  const pages: number[] = [];
  for (let i = 0; i < PAGES; i++) if ((bits[0]! >> i) & 1) pages.push(i);
  return [r, pages];
}

function hwptAlloc(p: Process, fd: number, devId: number, ptId: number, flags: number): [number, number] {
  const b = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ptId });
  const r = p.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return [r, new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id')];
}

function machine() {
  const m = createMachine('virt-smmuv3', { ramBytes: 256 * 2 ** 20 });
  const dev = m.device('0000:00:01.0');
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [cdev, devId] = bind(p, fd, 0);
  const va = p.mmap(PAGES * PAGE, { populate: true });
  t.equal(map(p, fd, ioas, va, PAGES * PAGE, IOVA)[0], 0);
  const bm = p.mmap(PAGE, { populate: true });
  return { m, dev, p, fd, ioas, cdev, devId, va, bm };
}

t.test('virt-smmuv3: GET_HW_INFO reports the IDRs (struct iommu_hw_info_arm_smmuv3) and IOMMU_HW_CAP_DIRTY_TRACKING', async (t) => {
  const { m, p, fd, devId } = machine();
  const buf = p.mmap(PAGE, { populate: true });
  const info = encodeStruct(iommu_hw_info, { size: iommu_hw_info.size, dev_id: devId, data_len: 64, data_uptr: buf });
  t.equal(p.ioctl(fd, IOMMU_GET_HW_INFO, info), 0);
  const v = new StructView(iommu_hw_info, info);
  t.equal(v.num('out_data_type'), IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
  t.equal(v.num('data_len'), 40, 'sizeof(struct iommu_hw_info_arm_smmuv3)');
  t.equal(Number(v.big('out_capabilities')) & IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_DIRTY_TRACKING);
  const data = p.memRead(buf, 40) as Uint8Array;
  const dv = new DataView(data.buffer, data.byteOffset);
  const base = m.board.layout.iommuBase;
  for (let i = 0; i < 6; i++) t.equal(dv.getUint32(8 + 4 * i, true), m.board.sysmem.read32(base + 4 * i), `idr[${i}] is SMMU_IDR${i}`);
  t.equal((dv.getUint32(8, true) >>> 6) & 3, 0b10, 'IDR0.HTTU: access flag and dirty state');
});

t.test('virt-smmuv3: HWPT_ALLOC DIRTY_TRACKING, SET_DIRTY_TRACKING clears what was dirty, device writes show in GET_DIRTY_BITMAP; clear and NO_CLEAR', async (t) => {
  const { dev, p, fd, ioas, cdev, devId, bm } = machine();
  const [r, hwpt] = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
  t.equal(r, 0, 'HWPT_ALLOC with DIRTY_TRACKING');
  t.same(attach(p, cdev, hwpt), [0, hwpt]);
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  t.same(dirty(p, fd, hwpt, bm, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), [0, [0, 1, 2, 3, 4, 5, 6, 7]], 'before tracking: the io-pgtable maps writable leaves dirty');
  t.equal(setDirty(p, fd, hwpt, true), 0);
  t.same(dirty(p, fd, hwpt, bm), [0, []], 'enabling cleared them: nothing written yet');
  t.ok(dev.dmaRead(BigInt(IOVA), 16).ok);
  t.ok(dev.dmaWrite(BigInt(IOVA + 2 * PAGE), new Uint8Array([1])).ok);
  t.ok(dev.dmaWrite(BigInt(IOVA + 5 * PAGE + 100), new Uint8Array([1])).ok);
  t.same(dirty(p, fd, hwpt, bm, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), [0, [2, 5]], 'device writes are dirty; reads are not');
  t.same(dirty(p, fd, hwpt, bm, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), [0, [2, 5]], 'NO_CLEAR kept them');
  t.same(dirty(p, fd, hwpt, bm), [0, [2, 5]], 'read and clear');
  t.same(dirty(p, fd, hwpt, bm), [0, []], 'cleared');
  t.ok(dev.dmaWrite(BigInt(IOVA + 2 * PAGE), new Uint8Array([2])).ok);
  t.same(dirty(p, fd, hwpt, bm), [0, [2]], 'a write after the clear is seen (the TLB was invalidated)');
  t.equal(setDirty(p, fd, hwpt, false), 0);
  t.ok(dev.dmaWrite(BigInt(IOVA + 7 * PAGE), new Uint8Array([3])).ok);
  t.same(dirty(p, fd, hwpt, bm), [0, [7]], 'HTTU stays on: disabling does not stop the SMMU recording (as Linux)');
  t.equal(setDirty(p, fd, hwpt, true), 0);
  t.same(dirty(p, fd, hwpt, bm), [0, []], 're-enabling starts from clean');
});

t.test('virt-smmuv3 dirty ioctls: bad inputs', async (t) => {
  const { p, fd, ioas, devId, bm } = machine();
  const [, plain] = hwptAlloc(p, fd, devId, ioas, 0);
  t.equal(setDirty(p, fd, plain, true), -EOPNOTSUPP, 'a HWPT allocated without DIRTY_TRACKING');
  t.same(dirty(p, fd, plain, bm)[0], -EOPNOTSUPP);
  const [, hwpt] = hwptAlloc(p, fd, devId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
  t.equal(setDirty(p, fd, hwpt, true, 1), -EOPNOTSUPP, 'non-zero __reserved');
  t.same(dirty(p, fd, hwpt, bm, 2)[0], -EOPNOTSUPP, 'unknown flag');
  t.same(dirty(p, fd, hwpt, bm, 0, PAGES * PAGE + 1)[0], -EINVAL, 'length not a multiple of page_size');
  t.same(dirty(p, fd, hwpt, bm, 0, 16 * PAGE)[0], -EINVAL, 'beyond the mapped range');
  t.equal(setDirty(p, fd, ioas, true), -ENOENT, 'an IOAS is not a HWPT');
  t.same(dirty(p, fd, devId, bm)[0], -ENOENT, 'a device is not a HWPT');
});
