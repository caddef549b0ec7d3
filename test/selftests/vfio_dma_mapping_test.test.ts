/**
 * Linux 7.3 tools/testing/selftests/vfio/vfio_dma_mapping_test.c, ported onto
 * both machines: the device under test is the test device at 0000:00:03.0,
 * in each of the lib's five IOMMU modes. The kernel's to_iova() looks the
 * address up in the lib's own list of regions; here the device's DMA checks
 * the mapping through the IOMMU instead. Its IOMMU page-table check reads the
 * Intel debugfs (absent on the rig too, so it is skipped there); here the
 * leaf level is checked in the domain's page table through its iova walk.
 */
import t from 'tap';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import * as E from '../../src/uapi/errno.ts';
import { VFIO_TYPE1_IOMMU } from '../../src/uapi/vfio.ts';
import { cleanup, deviceInit, DEVICE_BDF, IOMMU_MODES, IovaAllocator, iommuMap, iommuUnmap, iovaRanges, MACHINES, PAGE } from './libvfio.ts';

const SZ_2M = 2n * 1024n * 1024n;
const SZ_1G = 1024n * 1024n * 1024n;
const BACKINGS = [
  { name: 'anonymous', size: 0n, hugepage: undefined },
  { name: 'anonymous_hugetlb_2mb', size: SZ_2M, hugepage: '2M' as const },
  { name: 'anonymous_hugetlb_1gb', size: SZ_1G, hugepage: '1G' as const },
];

for (const kind of MACHINES) {
  t.test(kind, async (t) => {
    for (const b of BACKINGS) {
      for (const mode of IOMMU_MODES) {
        await t.test(`vfio_dma_mapping_test.${mode.name}_${b.name}.dma_map_unmap`, async (t) => {
          const size = b.size || BigInt(PAGE);
          // A 1 GiB page needs a free, aligned 1 GiB of RAM (the rig gives its guest 4 GiB for the same reason).
          const d = deviceInit(kind, mode, { ramBytes: b.hugepage === '1G' ? 2 * 2 ** 30 : undefined });
          const vaddr = d.p.mmap(size, { hugepage: b.hugepage, populate: b.hugepage !== undefined });
          // The kernel SKIPs when hugetlb pages are short; this machine always has them.
          t.ok(vaddr > 0n, `mmap (${vaddr})`);
          if (vaddr < 0n) return;
          d.p.memWrite(vaddr, new TextEncoder().encode(`dma_map_unmap ${b.name}`));
          d.p.memWrite(vaddr + size - 8n, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
          const alloc = new IovaAllocator(iovaRanges(d));
          const iova = alloc.alloc(size);
          const dev = d.m.device(DEVICE_BDF);
          const dom = d.m.host.iommu.domainForPasid(dev, -1)!;
          const leaves = dom.driver.stats?.leafWrites ?? 0;
          t.equal(iommuMap(d, vaddr, iova, size), 0, `mapped at IOVA 0x${iova.toString(16)}`);
          const written = (dom.driver.stats?.leafWrites ?? 0) - leaves;
          // to_iova(): the device reaches the buffer at that IOVA, first and last bytes.
          dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
          const head = dev.dmaRead(iova, 32);
          t.same(head.ok && head.data, d.p.memRead(vaddr, 32), 'the device reads the start');
          const tail = dev.dmaRead(iova + size - 8n, 8);
          t.same(tail.ok && tail.data, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 'and the end');
          if (mode.type !== VFIO_TYPE1_IOMMU) {
            // iommu_mapping_get(): a 4K buffer is a PTE, 2M a PMD block, 1G a PUD block.
            t.equal(written, 1, 'the IOMMU maps it with one leaf (PTE, PMD or PUD) of its size');
          }
          const [r, unmapped] = iommuUnmap(d, iova, size);
          t.equal(r, 0, 'unmap');
          t.equal(unmapped, size, 'all of it');
          t.equal(dev.dmaRead(iova, 4).ok, false, 'gone from the IOMMU');
          t.equal(d.p.munmap(vaddr, size), 0);
          t.equal(cleanup(d), 0, 'nothing left pinned');
        });
      }
    }
    for (const mode of IOMMU_MODES) {
      const setup = () => {
        const d = deviceInit(kind, mode);
        const mmapSize = 2n * BigInt(PAGE);
        const vaddr = d.p.mmap(mmapSize, {});
        const ranges = iovaRanges(d);
        const last = ranges[ranges.length - 1]!.last;
        // One page before the last IOVA.
        return { d, vaddr, iova: last & ~(BigInt(PAGE) - 1n), size: BigInt(PAGE), mmapSize };
      };
      const n = (c: string) => `vfio_dma_map_limit_test.${mode.name}.${c}`;
      await t.test(n('unmap_range'), async (t) => {
        const s = setup();
        t.equal(iommuMap(s.d, s.vaddr, s.iova, s.size), 0, `map the last page 0x${s.iova.toString(16)}`);
        t.same(iommuUnmap(s.d, s.iova, s.size), [0, s.size]);
        t.equal(cleanup(s.d), 0);
      });
      await t.test(n('unmap_all'), async (t) => {
        const s = setup();
        t.equal(iommuMap(s.d, s.vaddr, s.iova, s.size), 0);
        t.same(iommuUnmap(s.d, 0n, 0n, true), [0, s.size]);
        t.equal(cleanup(s.d), 0);
      });
      await t.test(n('overflow'), async (t) => {
        const s = setup();
        const iova = ((1n << 64n) - 1n) & ~(s.size - 1n);
        t.equal(iommuMap(s.d, s.vaddr, iova, s.mmapSize), -E.EOVERFLOW, 'a map that wraps u64');
        t.equal(iommuUnmap(s.d, iova, s.mmapSize)[0], -E.EOVERFLOW, 'an unmap that wraps u64');
        t.equal(cleanup(s.d), 0);
      });
    }
  });
}
