import t from 'tap';
import { EEXIST, EINVAL } from '../../src/uapi/errno.ts';
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
import { PAGE, VARIANTS } from './fixture.ts';

for (const variant of VARIANTS) {
  t.test(variant.name, async (t) => {

    t.test('the typed client drives container, group, device, map/unmap, dirty pages and SVA through the binary ioctls', async (t) => {
      const f = variant.setup();
      const { p } = f;
      const v = new VfioClient(p);
      const c = p.open('/dev/vfio/vfio');
      const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      t.equal(v.apiVersion(c), 0);
      t.equal(v.groupStatus(g), VFIO_GROUP_FLAGS_VIABLE);
      t.equal(v.setContainer(g, c), 0);
      t.equal(v.groupStatus(g), VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
      t.equal(v.setIommu(c, VFIO_TYPE1v2_IOMMU), 0);
      const compat = variant.container === 'iommufd';
      t.equal(v.checkExtension(c, VFIO_UPDATE_VADDR), compat ? 0 : 1);
      // Opened before the info query: iommufd attaches the device (and gets its domain) only now.
      const d = v.deviceFd(g, f.dma.bdf);
      t.ok(d >= 0);
      const info = v.iommuInfo(c);
      if (typeof info === 'number') throw new Error(`info ${info}`);
      t.equal(info.iovaPgsizes, BigInt(variant.pgsizes));
      const [lo, hi] = variant.msiWindow;
      t.same(info.iovaRanges, [{ start: 0n, end: BigInt(lo - 1) }, { start: BigInt(hi + 1), end: BigInt(variant.apertureEnd) }]);
      // iommufd_fill_cap_dma_avail() reports U32_MAX; the compat layer has no migration capability.
      t.equal(info.dmaAvail, compat ? 0xffff_ffff : 65535);
      t.same(info.migration, compat ? undefined : { flags: 0, pgsizeBitmap: 4096n, maxDirtyBitmapSize: 2n ** 28n });
      const va = p.mmap(4 * PAGE, { populate: true });
      t.equal(v.mapDma(c, { vaddr: va, iova: 0x10_0000n, size: 4 * PAGE }), 0);
      t.equal(v.mapDma(c, { vaddr: va, iova: 0x10_0000n, size: PAGE }), -EEXIST);
      if (!variant.skips.has('dirty-pages')) {
        t.equal(v.dirtyStart(c), 0);
        const bm = p.mmap(PAGE, { populate: true });
        t.equal(v.dirtyBitmap(c, { iova: 0x10_0000n, size: BigInt(8 * PAGE), pgsize: 4096n, bitmapSize: 8n, data: bm }), 0);
        t.equal((p.memRead(bm, 1) as Uint8Array)[0], 0x0f);
        t.equal(v.dirtyStop(c), 0);
      }
      t.equal(v.unmapDma(c, { iova: 0x10_0000n, size: 4 * PAGE }), BigInt(4 * PAGE));
      // SVA needs a PASID-capable device on a real IOMMU: its own container there.
      if (!variant.skips.has('sva-bind')) {
        let cs = c;
        if (f.sva !== f.dma) {
          cs = p.open('/dev/vfio/vfio');
          t.equal(v.setContainer(p.open(`/dev/vfio/${f.groupOf(f.sva)}`), cs), 0);
          t.equal(v.setIommu(cs, VFIO_TYPE1v2_IOMMU), 0);
        }
        const pasid = v.bindProcess(cs);
        t.ok(pasid >= 1);
        t.equal(v.bindProcess(cs), pasid);
        t.equal(v.unbindProcess(cs), 0);
      }
      const di = v.deviceInfo(d);
      t.same(di, { flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET, numRegions: 9, numIrqs: 5 });
      const r2 = v.regionInfo(d, 2);
      if (typeof r2 === 'number') throw new Error(`region ${r2}`);
      t.equal(r2.flags & VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_MMAP);
      t.equal(r2.msixMappable, true, 'BAR2 holds the MSI-X table and says it may be mapped anyway');
      t.equal(r2.sparseMmap, undefined, 'no sparse areas: the whole BAR maps');
      const r0 = v.regionInfo(d, 0);
      if (typeof r0 === 'number') throw new Error(`region ${r0}`);
      const bar0 = v.mmapRegion(d, r0, PAGE);
      t.ok(bar0 > 0n, 'BAR0 maps');
      t.same([...(p.memRead(bar0, 4) as Uint8Array)], [0x49, 0x4f, 0x45, 0x4d], 'and reads the ID register (IOEM)');
      t.equal(p.munmap(bar0, PAGE), 0);
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
  });
}
