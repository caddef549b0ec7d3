/**
 * VFIO type1 across fork(2): the container, group and device files are
 * shared through the copied fd table; a page the parent pinned for DMA is
 * copied for the child at fork, so the parent's later writes reach the
 * device (copy_present_page); the child's own MAP_DMA pins its memory and is
 * charged to its mm (dma->mm = current->mm); the parent's charge stays with
 * the parent's mm.
 */
import t from 'tap';
import { VFIO_IOMMU_GET_INFO, vfio_iommu_type1_info } from '../../src/uapi/vfio.ts';
import { encodeStruct } from '../../src/uapi/struct.ts';
import { map, openAttached, PAGE, variantsWith } from './fixture.ts';

for (const v of variantsWith('update-vaddr')) {
  t.test(`${v.name}: a pinned DMA buffer stays the parent's across fork; the child maps its own memory into the shared container`, async (t) => {
    const f = v.setup();
    const { p } = f;
    const [c] = openAttached(p, f);
    const va = p.mmap(2 * PAGE, { populate: true });
    p.memWrite(va, new Uint8Array([1, 1]));
    t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE }), 0);
    t.equal(p.mm.lockedVm, 1);
    const child = p.fork();
    f.dma.config.write(4, 2, 0x6);
    p.memWrite(va, new Uint8Array([2, 2]));
    const r = f.dma.dmaRead(0x10_0000n, 2);
    t.same(r.ok ? [...r.data!] : r.fault, [2, 2], 'the device sees the parent\'s write: the pinned page stayed the parent\'s');
    t.same(child.memRead(va, 2), new Uint8Array([1, 1]), 'the child got a copy at fork');
    t.equal(child.mm.lockedVm, 0, 'the child starts with nothing locked');
    t.equal(child.ioctl(c, VFIO_IOMMU_GET_INFO, encodeStruct(vfio_iommu_type1_info, { argsz: vfio_iommu_type1_info.size })), 0, 'the same container through the inherited fd');
    child.memWrite(va + BigInt(PAGE), new Uint8Array([7]));
    t.equal(map(child, c, { vaddr: va + BigInt(PAGE), iova: 0x20_0000, size: PAGE }), 0, 'the child maps its own memory');
    t.equal(child.mm.lockedVm, 1, 'charged to the child\'s mm');
    t.equal(p.mm.lockedVm, 1, 'the parent\'s charge is unchanged');
    const c2 = f.dma.dmaRead(0x20_0000n, 1);
    t.same(c2.ok ? [...c2.data!] : c2.fault, [7], 'the device reads the child\'s page');
    p.exit();
    t.ok(f.dma.dmaRead(0x10_0000n, 1).ok, 'the container lives on in the child, the parent\'s pinned page with it');
  });
}
