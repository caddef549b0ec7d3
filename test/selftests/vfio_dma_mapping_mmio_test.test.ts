/**
 * Linux 7.3 tools/testing/selftests/vfio/vfio_dma_mapping_mmio_test.c, ported
 * onto both machines: the largest mmap'ed BAR of the test device at
 * 0000:00:03.0 is mapped for DMA in each IOMMU mode. VFIO type1 maps a
 * VM_PFNMAP range (vaddr_get_pfns -> follow_fault_pfn); iommufd pins with
 * pin_user_pages, which refuses it (native iommufd never supports it; the
 * compat modes follow iommufd).
 */
import t, { type Test } from 'tap';
import { cleanup, deviceInit, IOMMU_MODES, IovaAllocator, iommuMap, iommuUnmap, iovaRanges, MACHINES, mapBars, mmapReserve, PAGE, type Bar, type Device } from './libvfio.ts';

const SZ_1G = 1n << 30n;

/** largest_mapped_bar(): the biggest mmap'ed BAR that is readable and writable. */
function largestMappedBar(bars: Bar[]): Bar | undefined {
  let best: Bar | undefined;
  for (const b of bars) if (b.vaddr !== 0n && (b.info.flags & 3) === 3 && (best === undefined || b.info.size > best.info.size)) best = b;
  return best;
}

function doMmioMapTest(t: Test, d: Device, alloc: IovaAllocator, vaddr: bigint, size: bigint): void {
  const iova = alloc.alloc(size);
  const r = iommuMap(d, vaddr, iova, size);
  if (d.iommu.mode.containerPath === '/dev/vfio/vfio') {
    t.equal(r, 0, 'type1 maps the BAR');
    t.same(iommuUnmap(d, iova, size), [0, size], 'and unmaps it');
  } else {
    t.not(r, 0, 'iommufd refuses to map MMIO');
  }
}

for (const kind of MACHINES) {
  t.test(kind, async (t) => {
    for (const mode of IOMMU_MODES) {
      const n = (c: string) => `vfio_dma_mapping_mmio_test.${mode.name}.${c}`;
      const setup = () => {
        const d = deviceInit(kind, mode);
        const alloc = new IovaAllocator(iovaRanges(d));
        const bar = largestMappedBar(mapBars(d));
        if (bar === undefined) throw new Error('no mappable BAR');
        return { d, alloc, bar };
      };
      await t.test(n('map_full_bar'), async (t) => {
        const s = setup();
        doMmioMapTest(t, s.d, s.alloc, s.bar.vaddr, s.bar.info.size);
        t.equal(cleanup(s.d), 0);
      });
      // The kernel SKIPs map_partial_bar when the BAR is under two pages: find out before the case starts.
      const probe = setup();
      const small = probe.bar.info.size < 2n * BigInt(PAGE) && `BAR too small (size=0x${probe.bar.info.size.toString(16)}), as the kernel SKIPs`;
      cleanup(probe.d);
      await t.test(n('map_partial_bar'), { skip: small }, async (t) => {
        const s = setup();
        doMmioMapTest(t, s.d, s.alloc, s.bar.vaddr, BigInt(PAGE));
        t.equal(cleanup(s.d), 0);
      });
      await t.test(n('map_bar_misaligned'), async (t) => {
        const s = setup();
        const size = s.bar.info.size < SZ_1G ? s.bar.info.size : SZ_1G;
        // mmap_reserve(size, SZ_1G, PAGE): vaddr sits one page past a 1 GiB boundary (poor alignment on purpose).
        const at = mmapReserve(s.d.p, size, SZ_1G, BigInt(PAGE));
        t.equal((at - BigInt(PAGE)) % SZ_1G, 0n, 'one page past a 1 GiB boundary');
        const vaddr = s.d.p.mmap(size, { fd: s.d.fd, offset: s.bar.info.offset, shared: true, addr: at, fixed: true });
        t.equal(vaddr, at, 'MAP_FIXED maps exactly there');
        doMmioMapTest(t, s.d, s.alloc, vaddr, size);
        t.equal(s.d.p.munmap(vaddr, size), 0);
        t.equal(cleanup(s.d), 0);
      });
    }
  });
}
