import t from 'tap';
import { EINVAL, ENOENT } from '../../src/uapi/errno.ts';
import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_VADDR, VFIO_DMA_UNMAP_FLAG_VADDR } from '../../src/uapi/vfio.ts';
import { vfioModule } from '../../src/vfio/module.ts';
import { domainOf, map, openTyped, PAGE, unmap, variantsWith } from './fixture.ts';

for (const v of variantsWith('update-vaddr')) {
  t.test(v.name, async (t) => {

    function mapped() {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.dma));
      const va = p.mmap(8 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), 0);
      t.equal(map(p, c, { vaddr: va + BigInt(4 * PAGE), iova: 0x10_4000, size: 4 * PAGE }), 0);
      const iommu = () => vfioModule(f.host).groups.get(f.host.iommu.groupOf(f.dma)!)!.container!.iommu!;
      return { f, p, c, va, iommu };
    }

    t.test('UNMAP with VADDR invalidates host vaddrs but keeps the IOMMU mappings, so DMA continues', async (t) => {
      const { f, p, c, va } = mapped();
      const pa = domainOf(f, f.dma).iovaToPhys(0x10_0000);
      t.same(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR }), [0, BigInt(8 * PAGE)]);
      t.equal(domainOf(f, f.dma).iovaToPhys(0x10_0000), pa);
      p.memWrite(va, new Uint8Array([7, 7]));
      f.dma.config.write(4, 2, 0x6);
      const r = f.dma.dmaRead(0x10_0000n, 2);
      t.ok(r.ok && r.data![0] === 7, 'the device still reads the pinned page');
      t.equal(p.mm.pinnedVm, 8, 'pins stay');
    });

    t.test('MAP with VADDR restores a vaddr: iova and size must match, READ/WRITE must be 0, protection unchanged', async (t) => {
      const { p, c, va, iommu } = mapped();
      t.same(unmap(p, c, { iova: 0x10_0000, size: 4 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR }), [0, BigInt(4 * PAGE)]);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE, flags: VFIO_DMA_MAP_FLAG_VADDR | VFIO_DMA_MAP_FLAG_READ }), -EINVAL, 'prot with VADDR');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 2 * PAGE, flags: VFIO_DMA_MAP_FLAG_VADDR }), -EINVAL, 'size differs');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_4000, size: 4 * PAGE, flags: VFIO_DMA_MAP_FLAG_VADDR }), -EINVAL, 'that vaddr is still valid');
      t.equal(map(p, c, { vaddr: va, iova: 0x30_0000, size: 4 * PAGE, flags: VFIO_DMA_MAP_FLAG_VADDR }), -ENOENT, 'no mapping there');
      t.equal(iommu().vaddrInvalidCount, 1);
      t.equal(map(p, c, { vaddr: va + 0x10_0000n, iova: 0x10_0000, size: 4 * PAGE, flags: VFIO_DMA_MAP_FLAG_VADDR }), 0);
      t.equal(iommu().vaddrInvalidCount, 0);
      const dma = iommu().dmas.find(0x10_0000, 1)!;
      t.equal(dma.vaddr, Number(va) + 0x10_0000);
      t.equal(dma.prot, 3, 'protection unchanged');
    });

    t.test('invalidating a vaddr that is already invalid is EINVAL and undoes the call\'s other invalidations', async (t) => {
      const { p, c, iommu } = mapped();
      t.same(unmap(p, c, { iova: 0x10_4000, size: 4 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR }), [0, BigInt(4 * PAGE)]);
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR })[0], -EINVAL);
      t.equal(iommu().dmas.find(0x10_0000, 1)!.vaddrInvalid, false);
      t.equal(iommu().vaddrInvalidCount, 1);
    });

    t.test('nothing waits for an invalid vaddr (Linux 6.3 dropped vfio_wait_all_valid, "block on invalid vaddr"): DMA goes on at once and the container has no wait', async (t) => {
      const { f, p, c, va, iommu } = mapped();
      t.same(unmap(p, c, { iova: 0x10_0000, size: 4 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR }), [0, BigInt(4 * PAGE)]);
      t.notOk('waitVaddr' in iommu(), 'no wait/wake API: there is nothing to block on');
      f.dma.config.write(4, 2, 0x6);
      const before = f.board.now();
      t.ok(f.dma.dmaRead(0x10_0000n, 8).ok, 'a DMA in the window completes');
      t.equal(f.board.now(), before, 'without waiting');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE, flags: VFIO_DMA_MAP_FLAG_VADDR }), 0);
    });

    t.test('an unmap of a mapping whose vaddr is invalid removes it and clears the invalid count', async (t) => {
      const { p, c, iommu } = mapped();
      t.same(unmap(p, c, { iova: 0x10_0000, size: 4 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR }), [0, BigInt(4 * PAGE)]);
      t.same(unmap(p, c, { iova: 0x10_0000, size: 4 * PAGE }), [0, BigInt(4 * PAGE)]);
      t.equal(iommu().vaddrInvalidCount, 0);
      t.equal(p.mm.pinnedVm, 4);
    });
  });
}
