import t from 'tap';
import { EEXIST, EINVAL } from '../../src/host/errno.ts';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UPDATE_VADDR,
} from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { PAGE, setup } from './fixture.ts';

t.test('the typed client drives container, group, device, map/unmap, dirty pages and SVA through the binary ioctls', async (t) => {
  const f = setup();
  const { p } = f;
  const v = new VfioClient(p);
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
  t.equal(v.apiVersion(c), 0);
  t.equal(v.groupStatus(g), VFIO_GROUP_FLAGS_VIABLE);
  t.equal(v.setContainer(g, c), 0);
  t.equal(v.groupStatus(g), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
  t.equal(v.setIommu(c, VFIO_TYPE1v2_IOMMU), 0);
  t.equal(v.checkExtension(c, VFIO_UPDATE_VADDR), 1);
  const info = v.iommuInfo(c);
  if (typeof info === 'number') throw new Error(`info ${info}`);
  t.equal(info.iovaPgsizes, BigInt(PAGE | 2 ** 21 | 2 ** 30));
  t.same(info.iovaRanges, [{ start: 0n, end: 0x7ff_ffffn }, { start: 0x810_0000n, end: 2n ** 48n - 1n }]);
  t.equal(info.dmaAvail, 65535);
  t.same(info.migration, { flags: 0, pgsizeBitmap: 4096n, maxDirtyBitmapSize: 2n ** 28n });
  const va = p.mmap(4 * PAGE, { populate: true });
  t.equal(v.mapDma(c, { vaddr: va, iova: 0x10_0000n, size: 4 * PAGE }), 0);
  t.equal(v.mapDma(c, { vaddr: va, iova: 0x10_0000n, size: PAGE }), -EEXIST);
  t.equal(v.dirtyStart(c), 0);
  const bm = p.mmap(PAGE, { populate: true });
  t.equal(v.dirtyBitmap(c, { iova: 0x10_0000n, size: BigInt(8 * PAGE), pgsize: 4096n, bitmapSize: 8n, data: bm }), 0);
  t.equal((p.memRead(bm, 1) as Uint8Array)[0], 0x0f);
  t.equal(v.dirtyStop(c), 0);
  t.equal(v.unmapDma(c, { iova: 0x10_0000n, size: 4 * PAGE }), BigInt(4 * PAGE));
  const pasid = v.bindProcess(c);
  t.ok(pasid >= 1);
  t.equal(v.bindProcess(c), pasid);
  t.equal(v.unbindProcess(c), 0);
  const d = v.deviceFd(g, f.dma.bdf);
  t.ok(d >= 0);
  const di = v.deviceInfo(d);
  t.same(di, { flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET, numRegions: 9, numIrqs: 5 });
  const r2 = v.regionInfo(d, 2);
  if (typeof r2 === 'number') throw new Error(`region ${r2}`);
  t.equal(r2.flags & VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_MMAP);
  t.same(r2.sparseMmap, [], 'the MSI-X table fills the only page of BAR2');
  t.equal(v.regionInfo(d, 8), -EINVAL);
  t.same(v.irqInfo(d, VFIO_PCI_MSIX_IRQ_INDEX), { flags: 9, count: 4 });
  const e = p.eventfd();
  t.equal(v.setIrqEventfds(d, VFIO_PCI_MSIX_IRQ_INDEX, 0, [e]), 0);
  t.equal(f.dma.msix.enabled, true);
  t.equal(v.disableIrqs(d, VFIO_PCI_MSIX_IRQ_INDEX), 0);
  t.equal(v.reset(d), 0);
  t.equal(p.close(d), 0);
  t.equal(v.unsetContainer(g), 0);
});

t.test('VfioError.check passes results through and throws negative errnos with the op and errno', async (t) => {
  const { VfioError } = await import('../../src/vfio/client.ts');
  t.equal(VfioError.check('x', 5), 5);
  try {
    VfioError.check('map', -EINVAL);
    t.fail('no throw');
  } catch (e) {
    t.match(e, { op: 'map', errno: -EINVAL });
  }
});
