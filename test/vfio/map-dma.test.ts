import t from 'tap';
import { EEXIST, EFAULT, EINVAL, ENOMEM, ENOSPC, EOVERFLOW } from '../../src/uapi/errno.ts';
import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, vfio_iommu_type1_dma_map } from '../../src/uapi/vfio.ts';
import { assertNothingLeft, domainOf, leafWrites, map, MIB2, openAttached, PAGE, VARIANTS } from './fixture.ts';

for (const v of VARIANTS) {
  t.test(v.name, async (t) => {
    t.test(`MAP_DMA maps the process's pages at the IOVA and the device's DMA reaches them`, async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(4 * PAGE);
      p.memWrite(va + 8192n, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
      t.equal(map(p, c, { vaddr: va, iova: 0x40_0000, size: 4 * PAGE }), 0);
      const d = domainOf(f, f.dma);
      for (let i = 0; i < 4; i++) t.equal(d.iovaToPhys(0x40_0000 + i * PAGE), p.mm.physOf(Number(va) + i * PAGE));
      f.dma.config.write(4, 2, 0x6); // memory + bus master, as the user would through the config region
      const r = f.dma.dmaRead(0x40_2000n, 4);
      t.ok(r.ok);
      if (r.ok) t.same([...r.data!], [0xde, 0xad, 0xbe, 0xef]);
      t.same(f.dma.dmaRead(0x50_0000n, 4), { ok: false, fault: v.unmappedFault }, 'unmapped IOVAs fault');
    });

    // vfio.map_calls and vfio.pinned_pages are type1's own counters (vfio_iommu_map per run, vfio_pin_pages_remote);
    // on iommufd the same rules show in the page table and the mm's pin count.
    const type1 = v.container === 'type1';

    t.test('a region backed by 2M pages maps with one iommu_map per contiguous run and 2M block entries', async (t) => {
      const f = v.setup({ ramBytes: 512 * 2 ** 20 });
      const { p } = f;
      const [c] = openAttached(p, f);
      const size = 16 * MIB2;
      const va = p.mmap(size, { hugepage: '2M', populate: true });
      const d = domainOf(f, f.dma);
      const leaves0 = leafWrites(d);
      let runs = 0;
      for (let a = 0; a < size; a += MIB2) if (a === 0 || p.mm.physOf(Number(va) + a) !== p.mm.physOf(Number(va) + a - 1) + 1) runs++;
      const calls0 = f.board.counters.get('vfio.map_calls');
      t.equal(map(p, c, { vaddr: va, iova: 0x4000_0000, size }), 0);
      if (type1) t.equal(f.board.counters.get('vfio.map_calls') - calls0, runs, 'one map call per physically contiguous run');
      t.equal(leafWrites(d) - leaves0, size / MIB2, '2M block entries, not 4K PTEs');
      t.equal(type1 ? f.board.counters.get('vfio.pinned_pages') : p.mm.pinnedVm, size / PAGE);
    });

    t.test('physically scattered 4K pages map as 4K entries, one map call each', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const a = p.mmap(8 * PAGE);
      const b = p.mmap(8 * PAGE);
      for (let i = 0; i < 8; i++) {
        p.memWrite(a + BigInt(i * PAGE), new Uint8Array([1]));
        p.memWrite(b + BigInt(i * PAGE), new Uint8Array([1]));
      }
      const d = domainOf(f, f.dma);
      const leaves0 = leafWrites(d);
      const calls0 = f.board.counters.get('vfio.map_calls');
      t.equal(map(p, c, { vaddr: a, iova: 0x20_0000, size: 8 * PAGE }), 0);
      if (type1) t.equal(f.board.counters.get('vfio.map_calls') - calls0, 8);
      t.equal(leafWrites(d) - leaves0, 8);
    });

    t.test('vaddr, iova and size must be aligned to the smallest IOMMU page and size non-zero (EINVAL)', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(4 * PAGE);
      t.equal(map(p, c, { vaddr: va + 8n, iova: 0x10_0000, size: PAGE }), -EINVAL);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0800, size: PAGE }), -EINVAL);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE + 1 }), -EINVAL);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 0 }), -EINVAL);
      t.equal(p.mm.pinnedVm, 0);
    });

    t.test('READ or WRITE is required and unknown flags are refused (EINVAL); argsz below the struct is EINVAL; a short buffer is EFAULT', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(PAGE);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE, flags: 0 }), -EINVAL);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE, flags: VFIO_DMA_MAP_FLAG_READ | 8 }), -EINVAL);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE, argsz: vfio_iommu_type1_dma_map.size - 1 }), -EINVAL);
      t.equal(p.ioctl(c, 0x3b71, new Uint8Array(16)), -EFAULT);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE, flags: VFIO_DMA_MAP_FLAG_READ }), 0, 'read-only is fine');
      t.equal(map(p, c, { vaddr: va, iova: 0x20_0000, size: PAGE, flags: VFIO_DMA_MAP_FLAG_WRITE }), 0, 'write-only is fine');
    });

    t.test('IOVA or vaddr ranges that wrap past 2^64 are EOVERFLOW (check_add_overflow in vfio_dma_do_map; iommufd: iopt_alloc_pages, iopt_check_iova)', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(2 * PAGE);
      const wrap = -EOVERFLOW;
      t.equal(map(p, c, { vaddr: va, iova: 2n ** 64n - BigInt(PAGE), size: 2 * PAGE }), wrap);
      t.equal(map(p, c, { vaddr: 2n ** 64n - BigInt(PAGE), iova: 0x10_0000, size: 2 * PAGE }), wrap);
      if (type1) {
        // vfio_dma_do_map(): size 0 first (EINVAL), then the wrap, before the flags and the alignment.
        t.equal(map(p, c, { vaddr: va, iova: 2n ** 64n - BigInt(PAGE), size: 0 }), -EINVAL, 'size 0');
        t.equal(map(p, c, { vaddr: va, iova: 2n ** 64n - BigInt(PAGE), size: 2 * PAGE, flags: 0 }), -EOVERFLOW, 'wrap before the missing READ/WRITE');
        t.equal(map(p, c, { vaddr: va + 8n, iova: 2n ** 64n - BigInt(PAGE) + 8n, size: 2 * PAGE }), -EOVERFLOW, 'wrap before the alignment');
      }
      t.equal(map(p, c, { vaddr: va, iova: 2n ** 64n - BigInt(PAGE), size: PAGE }), -EINVAL, 'in range but outside the valid IOVAs');
    });

    t.test('an overlapping map is EEXIST, whichever way it overlaps', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(16 * PAGE);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_4000, size: 4 * PAGE }), 0);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_4000, size: 4 * PAGE }), -EEXIST, 'same range');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_2000, size: 4 * PAGE }), -EEXIST, 'overlaps the start');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_7000, size: 4 * PAGE }), -EEXIST, 'overlaps the end');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 16 * PAGE }), -EEXIST, 'covers it');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_5000, size: PAGE }), -EEXIST, 'inside it');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_8000, size: PAGE }), 0, 'adjacent is fine');
      t.equal(map(p, c, { vaddr: va, iova: 0x10_3000, size: PAGE }), 0, 'adjacent below is fine');
      t.equal(p.mm.pinnedVm, 6);
    });

    t.test('the IOVA must lie inside one valid range: the reserved MSI window and beyond the aperture are EINVAL', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(4 * PAGE);
      const [lo, hi] = v.msiWindow;
      t.equal(map(p, c, { vaddr: va, iova: lo, size: PAGE }), -EINVAL, 'in the MSI window');
      t.equal(map(p, c, { vaddr: va, iova: lo - PAGE, size: 2 * PAGE }), -EINVAL, 'straddles into it');
      t.equal(map(p, c, { vaddr: va, iova: v.apertureEnd + 1, size: PAGE }), -EINVAL, 'beyond the aperture');
      t.equal(map(p, c, { vaddr: va, iova: lo - PAGE, size: PAGE }), 0, 'just below it');
      t.equal(map(p, c, { vaddr: va, iova: hi + 1, size: PAGE }), 0, 'just above it');
    });

    t.test('the dma_entry_limit caps live mappings (ENOSPC); an unmap gives one back', { skip: v.skips.has('dma-entry-limit') && 'no dma_entry_limit' }, async (t) => {
      const f = v.setup({ vfio: { dmaEntryLimit: 3 } });
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(PAGE);
      for (let i = 0; i < 3; i++) t.equal(map(p, c, { vaddr: va, iova: 0x10_0000 + i * PAGE, size: PAGE }), 0);
      t.equal(map(p, c, { vaddr: va, iova: 0x20_0000, size: PAGE }), -ENOSPC);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: PAGE }), -EEXIST, 'EEXIST is checked first');
      const { unmap } = await import('./fixture.ts');
      t.same(unmap(p, c, { iova: 0x10_0000, size: PAGE }), [0, BigInt(PAGE)]);
      t.equal(map(p, c, { vaddr: va, iova: 0x20_0000, size: PAGE }), 0);
    });

    t.test('a map that fails part-way (a hole in the vaddr range) unwinds: EFAULT, no pins, no entries, no accounting', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const pages = 1200;
      const va = p.mmap(pages * PAGE, { populate: true });
      t.equal(p.munmap(va + BigInt(1100 * PAGE), PAGE), 0);
      const inUse = f.host.allocator.pagesInUse;
      const calls = f.board.counters.get('vfio.map_calls');
      t.equal(map(p, c, { vaddr: va, iova: 0x100_0000, size: pages * PAGE }), -EFAULT);
      if (type1) t.ok(f.board.counters.get('vfio.map_calls') > calls, 'runs were mapped before the hole');
      assertNothingLeft(t, f, 0x100_0000, pages * PAGE, v);
      t.equal(f.host.allocator.pagesInUse, inUse, 'no page or table page leaked');
    });

    t.test('a map whose IOMMU map call fails part-way unwinds completely (ENOMEM)', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const a = p.mmap(8 * PAGE);
      const b = p.mmap(8 * PAGE);
      for (let i = 0; i < 8; i++) {
        p.memWrite(a + BigInt(i * PAGE), new Uint8Array([1]));
        p.memWrite(b + BigInt(i * PAGE), new Uint8Array([1]));
      }
      const drv = domainOf(f, f.dma).driver as { mapPages: (...x: never[]) => { mapped: number; err: number } };
      const orig = drv.mapPages.bind(drv);
      let n = 0;
      drv.mapPages = ((...x: never[]) => (++n === 5 ? { mapped: 0, err: -ENOMEM } : orig(...x))) as typeof drv.mapPages;
      const inUse = f.host.allocator.pagesInUse;
      t.equal(map(p, c, { vaddr: a, iova: 0x100_0000, size: 8 * PAGE }), -ENOMEM);
      assertNothingLeft(t, f, 0x100_0000, 8 * PAGE, v);
      t.equal(f.host.allocator.pagesInUse, inUse, 'no page leaked');
      t.equal(map(p, c, { vaddr: a, iova: 0x100_0000, size: 8 * PAGE }), 0, 'the same map works next time');
    });

    t.test('100,000 live mappings inserted all over the tree: overlap found, one unmap of them all', { skip: !v.heavy && 'heavy case: q35-vtd only' }, async (t) => {
      const f = v.setup({ vfio: { dmaEntryLimit: 200_000 } });
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(PAGE, { populate: true });
      const n = 100_000;
      const t0 = performance.now();
      // Interleaved order so inserts land all over the tree.
      for (let i = 0; i < n; i++) {
        const slot = (i * 7919) % n;
        if (map(p, c, { vaddr: va, iova: 0x1000_0000 + slot * 2 * PAGE, size: PAGE }) !== 0) {
          t.fail(`map ${i}`);
          break;
        }
      }
      const t1 = performance.now();
      t.equal(map(p, c, { vaddr: va, iova: 0x1000_0000 + 5 * 2 * PAGE, size: PAGE }), -EEXIST);
      const { unmap } = await import('./fixture.ts');
      t.same(unmap(p, c, { iova: 0x1000_0000, size: n * 2 * PAGE }), [0, BigInt(n * PAGE)]);
      const t2 = performance.now();
      // Orientation only: the cost growth with the mapping count is a bench row (mappings.100k_vs_1k.per_op_ratio).
      t.comment(`maps took ${Math.round(t1 - t0)} ms, unmap of all ${Math.round(t2 - t1)} ms`);
      t.equal(p.mm.pinnedVm, 0);
    });

    t.test('the bench helper maps a region from 2M pages with 2M entries and from scattered 4K pages with 4K entries', { skip: !v.heavy && 'heavy case: q35-vtd only' }, async (t) => {
      const { benchMap } = await import('../../src/vfio/bench-map.ts');
      const f = v.setup({ ramBytes: 256 * 2 ** 20 });
      const size = 16 * MIB2;
      const r = benchMap(f.host, f.groupOf(f.dma), () => performance.now(), size);
      t.equal(r.ptes2m, size / MIB2);
      t.ok(r.mapCalls2m <= size / MIB2);
      t.equal(r.ptes4k, size / PAGE);
      t.equal(r.mapCalls4k, size / PAGE);
      t.ok(r.timeRatio > 1, `4K took ${r.timeRatio.toFixed(1)}x as long`);
    });

    t.test('disable_hugepages maps one page per call even when memory is contiguous', { skip: v.skips.has('disable-hugepages') && 'no disable_hugepages' }, async (t) => {
      const f = v.setup({ vfio: { disableHugepages: true } });
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(2 * MIB2, { hugepage: '2M', populate: true });
      const d = domainOf(f, f.dma);
      const l0 = leafWrites(d);
      t.equal(map(p, c, { vaddr: va, iova: 0x4000_0000, size: 2 * MIB2 }), 0);
      t.equal(leafWrites(d) - l0, 1024);
    });
  });
}
