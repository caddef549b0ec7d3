import t from 'tap';
import { EFAULT, EINVAL, ENOENT, EOVERFLOW } from '../../src/uapi/errno.ts';
import {
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1_IOMMU,
  vfio_iommu_type1_dma_unmap,
} from '../../src/uapi/vfio.ts';
import { deviceFd, domainOf, map, MIB2, openAttached, openTyped, PAGE, unmap, VARIANTS } from './fixture.ts';

for (const v of VARIANTS) {
  t.test(v.name, async (t) => {

    function threeMaps() {
      const f = v.setup();
      const { p } = f;
      const [c, g] = openAttached(p, f);
      const va = p.mmap(16 * PAGE, { populate: true });
      map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE });
      map(p, c, { vaddr: va, iova: 0x10_4000, size: 2 * PAGE });
      map(p, c, { vaddr: va, iova: 0x20_0000, size: PAGE });
      return { f, p, c, g, va };
    }

    t.test('UNMAP_DMA returns the size unmapped: every mapping inside the range, nothing for an empty range', async (t) => {
      const { f, p, c } = threeMaps();
      t.same(unmap(p, c, { iova: 0x30_0000, size: PAGE }), [0, 0n], 'nothing there: success, size 0');
      t.same(unmap(p, c, { iova: 0x10_0000, size: 0x10_0000 }), [0, BigInt(6 * PAGE)], 'two mappings at once');
      t.equal(domainOf(f, f.dma).iovaToPhys(0x10_0000), -1);
      t.equal(domainOf(f, f.dma).iovaToPhys(0x20_0000) >= 0, true, 'the one outside stays');
      t.equal(p.mm.pinnedVm, 1);
    });

    // vfio_compat.c copies the size back even on failure, and iopt_unmap_iova_range() stops at the first area
    // reaching outside the range with -ENOENT, keeping the ones before it unmapped.
    const compat = v.container === 'iommufd';

    t.test('TYPE1v2 refuses to bisect a mapping at either end (EINVAL) and changes nothing', { skip: compat && 'type1 rule; iommufd below' }, async (t) => {
      const { f, p, c } = threeMaps();
      t.same(unmap(p, c, { iova: 0x10_1000, size: 3 * PAGE }), [-EINVAL, BigInt(3 * PAGE)], 'starts inside; the struct is not copied back');
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 5 * PAGE })[0], -EINVAL, 'ends inside the second');
      t.equal(p.mm.pinnedVm, 7);
      t.ok(domainOf(f, f.dma).iovaToPhys(0x10_1000) >= 0);
    });

    t.test('iommufd TYPE1v2: an unmap reaching into a mapping is ENOENT; areas before it in the range are unmapped and counted', { skip: !compat && 'iommufd compat only' }, async (t) => {
      const { f, p, c } = threeMaps();
      t.same(unmap(p, c, { iova: 0x10_1000, size: 3 * PAGE }), [-ENOENT, 0n], 'starts inside: nothing unmapped, size 0 copied back');
      t.same(unmap(p, c, { iova: 0x10_0000, size: 5 * PAGE }), [-ENOENT, BigInt(4 * PAGE)], 'ends inside the second: the first went');
      t.equal(domainOf(f, f.dma).iovaToPhys(0x10_0000), -1);
      t.ok(domainOf(f, f.dma).iovaToPhys(0x10_4000) >= 0, 'the second stays');
      t.equal(p.mm.pinnedVm, 3);
    });

    t.test('iommufd TYPE1 (v1): emulated by 4K-only mapping and area cuts, so any page-aligned part of a mapping unmaps', { skip: !compat && 'iommufd compat only' }, async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c, g] = openTyped(p, f.groupOf(f.dma), VFIO_TYPE1_IOMMU);
      t.ok(deviceFd(p, g, f.dma.bdf) >= 0, 'the device attaches after SET_IOMMU(TYPE1) disabled large pages');
      const va = p.mmap(4 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), 0);
      t.same(unmap(p, c, { iova: 0x10_1000, size: PAGE }), [0, BigInt(PAGE)], 'the middle page alone');
      t.same(unmap(p, c, { iova: 0x10_0000, size: PAGE }), [0, BigInt(PAGE)], 'the first page alone');
      t.equal(domainOf(f, f.dma).iovaToPhys(0x10_2000) >= 0, true, 'the rest stays mapped');
      t.equal(p.mm.pinnedVm, 2);
    });

    t.test('TYPE1 (v1) keeps the old granularity: an unmap inside a mapping unmaps nothing, one covering its start unmaps all of it', { skip: compat && 'type1 rule; iommufd above' }, async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.dma), VFIO_TYPE1_IOMMU);
      const va = p.mmap(4 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), 0);
      t.same(unmap(p, c, { iova: 0x10_1000, size: PAGE }), [0, 0n]);
      t.same(unmap(p, c, { iova: 0x10_0000, size: PAGE }), [0, BigInt(4 * PAGE)]);
      t.equal(p.mm.pinnedVm, 0);
    });

    t.test('unmap alignment and zero size are EINVAL (iommufd: ENOENT, EINVAL), wrap is EOVERFLOW (vfio_dma_do_unmap check_add_overflow); unknown flags and short argsz are EINVAL', async (t) => {
      const { p, c } = threeMaps();
      // iopt_unmap_iova() has no alignment rule: a misaligned range cuts into an area (-ENOENT); u64 wrap is -EOVERFLOW.
      t.equal(unmap(p, c, { iova: 0x10_0800, size: PAGE })[0], compat ? -ENOENT : -EINVAL);
      t.equal(unmap(p, c, { iova: 0x10_0000, size: PAGE + 8 })[0], compat ? -ENOENT : -EINVAL);
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 0 })[0], -EINVAL);
      t.equal(unmap(p, c, { iova: 2n ** 64n - BigInt(PAGE), size: 2 * PAGE })[0], -EOVERFLOW);
      if (!compat) t.equal(unmap(p, c, { iova: 2n ** 64n - BigInt(PAGE), size: PAGE + 8 })[0], -EINVAL, 'a misaligned size is refused before the wrap');
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 4 * PAGE, flags: 1 << 5 })[0], -EINVAL);
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 4 * PAGE, argsz: vfio_iommu_type1_dma_unmap.size - 1 })[0], -EINVAL);
      t.equal(p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, new Uint8Array(8)), -EFAULT);
      t.equal(p.mm.pinnedVm, 7);
    });

    t.test('UNMAP_ALL takes iova = size = 0, unmaps everything, and cannot be combined with GET_DIRTY_BITMAP', async (t) => {
      const { p, c } = threeMaps();
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL })[0], -EINVAL);
      t.equal(unmap(p, c, { iova: 0, size: PAGE, flags: VFIO_DMA_UNMAP_FLAG_ALL })[0], -EINVAL);
      t.equal(unmap(p, c, { iova: 0, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, bitmap: { pgsize: 4096n, size: 8n, data: 0x10000n } })[0], -EINVAL);
      t.same(unmap(p, c, { iova: 0, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL }), [0, BigInt(7 * PAGE)]);
      t.equal(p.mm.pinnedVm, 0);
    });

    t.test('unmap removes a 2M-block mapping whole and frees its pins', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(4 * MIB2, { hugepage: '2M', populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x4000_0000, size: 4 * MIB2 }), 0);
      t.same(unmap(p, c, { iova: 0x4000_0000, size: 4 * MIB2 }), [0, BigInt(4 * MIB2)]);
      for (let a = 0; a < 4 * MIB2; a += MIB2) t.equal(domainOf(f, f.dma).iovaToPhys(0x4000_0000 + a), -1);
      t.equal(p.mm.pinnedVm, 0);
      if (!compat) t.equal(f.board.counters.get('vfio.pinned_pages'), 0);
    });

    t.test('VADDR unmap flag cannot be combined with GET_DIRTY_BITMAP (EINVAL)', async (t) => {
      const { p, c } = threeMaps();
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 4 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, bitmap: { pgsize: 4096n, size: 8n, data: 0x10000n } })[0], -EINVAL);
    });
  });
}
