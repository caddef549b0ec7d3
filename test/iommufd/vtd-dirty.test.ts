import t from 'tap';
import type { VtdDriver } from '../../iommu/vtd/driver/driver.ts';
import { createMachine } from '../../machines/machine.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import {
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
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

const setDirty = (p: Process, fd: number, hwpt: number, on: boolean) =>
  p.ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, encodeStruct(iommu_hwpt_set_dirty_tracking, {
    size: iommu_hwpt_set_dirty_tracking.size, flags: on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, hwpt_id: hwpt,
  }));

/** GET_DIRTY_BITMAP over the 8 mapped pages: [result, dirty page indexes]. */
function dirty(p: Process, fd: number, hwpt: number, bm: bigint, flags = 0): [number, number[]] {
  p.memWrite(bm, new Uint8Array(8));
  const r = p.ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, encodeStruct(iommu_hwpt_get_dirty_bitmap, {
    size: iommu_hwpt_get_dirty_bitmap.size, hwpt_id: hwpt, flags, iova: BigInt(IOVA), length: BigInt(PAGES * PAGE), page_size: BigInt(PAGE), data: bm,
  }));
  const bits = p.memRead(bm, 1) as Uint8Array;
  const pages: number[] = [];
  for (let i = 0; i < PAGES; i++) if ((bits[0]! >> i) & 1) pages.push(i);
  return [r, pages];
}

t.test('q35-vtd: HWPT_ALLOC DIRTY_TRACKING, SET_DIRTY_TRACKING, device writes show in GET_DIRTY_BITMAP; clear and NO_CLEAR', async (t) => {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const dev = m.device('0000:00:01.0');
  const driver = m.host.iommu.driverOf(dev) as VtdDriver;
  driver.offerDirtyTracking = true; // see VtdDriver.offerDirtyTracking
  const p = m.host.spawn({ memlockLimit: 2 ** 30 });
  const fd = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, fd);
  const [cdev, devId] = bind(p, fd, 0);
  const info = encodeStruct(iommu_hw_info, { size: iommu_hw_info.size, dev_id: devId });
  t.equal(p.ioctl(fd, IOMMU_GET_HW_INFO, info), 0);
  t.equal(Number(new StructView(iommu_hw_info, info).big('out_capabilities')) & IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_CAP_DIRTY_TRACKING, 'hw_info reports dirty tracking');
  const va = p.mmap(PAGES * PAGE, { populate: true });
  t.equal(map(p, fd, ioas, va, PAGES * PAGE, IOVA)[0], 0);
  const b = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING, dev_id: devId, pt_id: ioas });
  t.equal(p.ioctl(fd, IOMMU_HWPT_ALLOC, b), 0, 'HWPT_ALLOC with DIRTY_TRACKING');
  const hwpt = new StructView(iommu_hwpt_alloc, b).num('out_hwpt_id');
  t.same(attach(p, cdev, hwpt), [0, hwpt]);
  dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  const bm = p.mmap(PAGE, { populate: true });
  t.equal(setDirty(p, fd, hwpt, true), 0);
  t.same(dirty(p, fd, hwpt, bm), [0, []], 'nothing written yet');
  t.ok(dev.dmaRead(BigInt(IOVA), 16).ok);
  t.ok(dev.dmaWrite(BigInt(IOVA + 2 * PAGE), new Uint8Array([1])).ok);
  t.ok(dev.dmaWrite(BigInt(IOVA + 5 * PAGE + 100), new Uint8Array([1])).ok);
  t.same(dirty(p, fd, hwpt, bm, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), [0, [2, 5]], 'device writes are dirty; reads are not');
  t.same(dirty(p, fd, hwpt, bm, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), [0, [2, 5]], 'NO_CLEAR kept them');
  t.same(dirty(p, fd, hwpt, bm), [0, [2, 5]], 'read and clear');
  t.same(dirty(p, fd, hwpt, bm), [0, []], 'cleared');
  t.ok(dev.dmaWrite(BigInt(IOVA + 2 * PAGE), new Uint8Array([2])).ok);
  t.same(dirty(p, fd, hwpt, bm), [0, [2]], 'a write after the clear is seen (the IOTLB was flushed)');
  t.equal(setDirty(p, fd, hwpt, false), 0);
});
