import t from 'tap';
import { EACCES, EFAULT, EINVAL } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { encodeStruct } from '../../src/uapi/struct.ts';
import {
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_TYPE1_IOMMU,
  vfio_iommu_type1_dirty_bitmap,
  vfio_iommu_type1_dirty_bitmap_get,
} from '../../src/uapi/vfio.ts';
import { map, openTyped, PAGE, unmap, variantsWith } from './fixture.ts';

for (const v of variantsWith('dirty-pages')) {
  t.test(v.name, async (t) => {

    const ctl = (p: Process, c: number, flags: number, argsz = 8) =>
      p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, encodeStruct(vfio_iommu_type1_dirty_bitmap, { argsz, flags }));

    function getBitmap(p: Process, c: number, g: { iova: number; size: number; pgsize?: number; bitmapSize: number; data: bigint; argsz?: number }): number {
      const bytes = new Uint8Array(8 + 40);
      bytes.set(encodeStruct(vfio_iommu_type1_dirty_bitmap, { argsz: g.argsz ?? bytes.length, flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP }));
      bytes.set(
        encodeStruct(vfio_iommu_type1_dirty_bitmap_get, { iova: BigInt(g.iova), size: BigInt(g.size), bitmap_pgsize: BigInt(g.pgsize ?? PAGE), bitmap_size: BigInt(g.bitmapSize), bitmap_data: g.data }),
        8,
      );
      return p.ioctl(c, VFIO_IOMMU_DIRTY_PAGES, bytes);
    }

    /** Bits set in a little-endian bitmap. */
    function bits(b: Uint8Array): number[] {
      const out: number[] = [];
      for (let i = 0; i < b.length * 8; i++) if ((b[i >> 3]! >> (i & 7)) & 1) out.push(i);
      return out;
    }

    function tracked() {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.dma));
      const va = p.mmap(16 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 3 * PAGE }), 0);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_5000, size: 2 * PAGE }), 0);
      const bm = p.mmap(PAGE, { populate: true });
      return { f, p, c, va, bm };
    }

    t.test('DIRTY_PAGES needs TYPE1v2 (EACCES)', async (t) => {
      const f = v.setup();
      const [c] = openTyped(f.p, f.groupOf(f.dma), VFIO_TYPE1_IOMMU);
      t.equal(ctl(f.p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), -EACCES);
    });

    t.test('DIRTY_PAGES takes exactly one known flag and argsz >= 8 (EINVAL otherwise)', async (t) => {
      const { p, c } = tracked();
      t.equal(ctl(p, c, 0), -EINVAL);
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), -EINVAL);
      t.equal(ctl(p, c, 1 << 3), -EINVAL);
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START, 7), -EINVAL);
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0, 'starting twice is fine');
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), 0);
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), 0, 'stopping twice is fine');
    });

    t.test('GET_BITMAP needs tracking on; while on, every page of every mapping is dirty (pinned-page tracking) and gaps are clean', async (t) => {
      const { f, p, c, bm } = tracked();
      t.equal(getBitmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, bitmapSize: 8, data: bm }), -EINVAL, 'not tracking');
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
      f.dma.config.write(4, 2, 0x6);
      t.ok(f.dma.dmaWrite(0x10_1000n, new Uint8Array([1])).ok);
      t.equal(getBitmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, bitmapSize: 8, data: bm }), 0);
      t.same(bits(p.memRead(bm, 8) as Uint8Array), [0, 1, 2, 5, 6]);
      p.memWrite(bm, new Uint8Array(8));
      t.equal(getBitmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, bitmapSize: 8, data: bm }), 0);
      t.same(bits(p.memRead(bm, 8) as Uint8Array), [0, 1, 2, 5, 6], 'still dirty: a pinned page may be written any time');
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP), 0);
      t.equal(getBitmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, bitmapSize: 8, data: bm }), -EINVAL, 'stopped');
    });

    t.test('a bitmap for a range starting mid-word keeps the earlier mappings\' bits in the shared word', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.dma));
      const va = p.mmap(PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE }), 0);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000 + 70 * PAGE, size: PAGE }), 0);
      const bm = p.mmap(PAGE, { populate: true });
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
      t.equal(getBitmap(p, c, { iova: 0x10_0000, size: 128 * PAGE, bitmapSize: 16, data: bm }), 0);
      t.same(bits(p.memRead(bm, 16) as Uint8Array), [0, 70]);
    });

    t.test('GET_BITMAP rules: pgsize is the IOMMU minimum, range aligned and non-empty, bitmap big enough and in user space, no bisected mapping', async (t) => {
      const { p, c, bm } = tracked();
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
      const ok = { iova: 0x10_0000, size: 8 * PAGE, bitmapSize: 8, data: bm };
      t.equal(getBitmap(p, c, { ...ok, pgsize: 2 * PAGE }), -EINVAL, 'pgsize');
      t.equal(getBitmap(p, c, { ...ok, pgsize: 0 }), -EINVAL, 'pgsize 0');
      t.equal(getBitmap(p, c, { ...ok, iova: 0x10_0800 }), -EINVAL, 'iova alignment');
      t.equal(getBitmap(p, c, { ...ok, size: 0 }), -EINVAL, 'empty');
      t.equal(getBitmap(p, c, { ...ok, bitmapSize: 0 }), -EINVAL, 'bitmap size 0');
      t.equal(getBitmap(p, c, { ...ok, size: 65 * 64 * PAGE, bitmapSize: 8 }), -EINVAL, 'bitmap too small');
      t.equal(getBitmap(p, c, { ...ok, bitmapSize: 2 ** 29 }), -EINVAL, 'bitmap over the 256 MiB maximum');
      t.equal(getBitmap(p, c, { ...ok, data: 2n ** 60n }), -EINVAL, 'not a user address');
      t.equal(getBitmap(p, c, { ...ok, iova: 0x10_1000 }), -EINVAL, 'starts inside a mapping');
      t.equal(getBitmap(p, c, { ...ok, size: 6 * PAGE }), -EINVAL, 'ends inside a mapping');
      t.equal(getBitmap(p, c, { ...ok, argsz: 8 + 39 }), -EINVAL, 'argsz without the whole range struct');
      t.equal(getBitmap(p, c, { ...ok, data: 0x20_0000n }), -EFAULT, 'unmapped bitmap pointer');
    });

    t.test('UNMAP with GET_DIRTY_BITMAP reports the unmapped range\'s dirty pages', async (t) => {
      const { p, c, bm } = tracked();
      const bitmap = { pgsize: 4096n, size: 8n, data: bm };
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, bitmap })[0], -EINVAL, 'tracking is off');
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, bitmap: { ...bitmap, pgsize: 8192n } })[0], -EINVAL, 'pgsize');
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, bitmap: { ...bitmap, size: 0n } })[0], -EINVAL, 'bitmap size');
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, argsz: 24, bitmap })[0], -EINVAL, 'argsz leaves out the bitmap');
      t.equal(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, bitmap: { ...bitmap, data: 0x20_0000n } })[0], -EFAULT, 'bad pointer');
      t.equal(p.mm.pinnedVm, 5, 'the EFAULT unmapped nothing');
      t.same(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, bitmap }), [0, BigInt(5 * PAGE)]);
      t.same(bits(p.memRead(bm, 8) as Uint8Array), [0, 1, 2, 5, 6]);
      t.equal(p.mm.pinnedVm, 0);
    });

    t.test('a map made while tracking is on gets a bitmap and is reported', async (t) => {
      const { p, c, va, bm } = tracked();
      t.equal(ctl(p, c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_3000, size: PAGE }), 0);
      t.equal(getBitmap(p, c, { iova: 0x10_0000, size: 8 * PAGE, bitmapSize: 8, data: bm }), 0);
      t.same(bits(p.memRead(bm, 8) as Uint8Array), [0, 1, 2, 3, 5, 6]);
    });
  });
}
