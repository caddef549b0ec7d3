import t from 'tap';
import { EBUSY, EFAULT, EINVAL, ENODEV, ENOTTY } from '../../src/uapi/errno.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  vfio_info_cap_header,
  vfio_iommu_type1_info,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iommu_type1_info_cap_migration,
  vfio_iommu_type1_info_dma_avail,
  vfio_iova_range,
} from '../../src/uapi/vfio.ts';
import { map, openAttached, openTyped, PAGE, s32, unmap, VARIANTS } from './fixture.ts';
import type { Test } from 'tap';
import type { Process } from '../../src/host/process.ts';

for (const variant of VARIANTS) {
  t.test(variant.name, async (t) => {

    t.test('VFIO_GET_API_VERSION is VFIO_API_VERSION (0)', async (t) => {
      const { p } = variant.setup();
      const c = p.open('/dev/vfio/vfio');
      t.ok(c >= 0);
      t.equal(p.ioctl(c, VFIO_GET_API_VERSION, 0), 0);
    });

    t.test('CHECK_EXTENSION: TYPE1, TYPE1v2 and UNMAP_ALL always; UPDATE_VADDR once an IOMMU is set (never on iommufd); nesting, SPAPR never', async (t) => {
      const f = variant.setup();
      const { p } = f;
      const c = p.open('/dev/vfio/vfio');
      const ext = (e: number) => p.ioctl(c, VFIO_CHECK_EXTENSION, e);
      const compat = variant.container === 'iommufd';
      t.same([VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL].map(ext), [1, 1, 1]);
      t.same([VFIO_UPDATE_VADDR, VFIO_TYPE1_NESTING_IOMMU, VFIO_SPAPR_TCE_IOMMU, VFIO_NOIOMMU_IOMMU, 1234].map(ext), [0, 0, 0, 0, 0]);
      // type1: no IOMMU, no coherent domain. iommufd_vfio_cc_iommu() asks the compat IOAS: none before a group.
      t.equal(ext(VFIO_DMA_CC_IOMMU), compat ? -ENODEV : 0, 'DMA_CC_IOMMU before a group');
      const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
      // iommufd_vfio_check_extension(): "It is hard to see how this could be implemented safely."
      t.equal(ext(VFIO_UPDATE_VADDR), compat ? 0 : 1);
      t.equal(ext(VFIO_TYPE1_NESTING_IOMMU), 0);
      if (compat) t.equal(ext(VFIO_DMA_CC_IOMMU), 1, 'iommufd: no HWPT on the compat IOAS yet, so nothing breaks coherency');
    });

    t.test('SET_IOMMU needs a group in the container (EINVAL), refuses a second time (EINVAL), unknown types (ENODEV) and non-IOMMU extensions (EINVAL)', { skip: variant.container === 'iommufd' && 'type1 rules; iommufd below' }, async (t) => {
      const f = variant.setup();
      const { p } = f;
      const c = p.open('/dev/vfio/vfio');
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL, 'no group yet');
      const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), -ENODEV);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_UPDATE_VADDR), -ENODEV, 'type1 does not claim UPDATE_VADDR before it is open');
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_UNMAP_ALL), -EINVAL, 'claimed by type1, refused by its open()');
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL, 'already set');
    });

    // iommufd_vfio_set_iommu(): only TYPE1/TYPE1v2 (-EINVAL first), then the compat IOAS ("VFIO fails the
    // set_iommu if there is no group": -ENODEV); a second SET_IOMMU is fine; TYPE1 disables large pages.
    t.test('iommufd: SET_IOMMU takes TYPE1/TYPE1v2 only (EINVAL), needs the compat IOAS a group creates (ENODEV), and may be repeated', { skip: variant.container !== 'iommufd' && 'iommufd compat only' }, async (t) => {
      const f = variant.setup();
      const { p } = f;
      const c = p.open('/dev/vfio/vfio');
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -ENODEV, 'no group yet');
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), -EINVAL, 'the type is checked first');
      const g = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
      t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), -EINVAL);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_UPDATE_VADDR), -EINVAL);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_UNMAP_ALL), -EINVAL);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);
      t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0, 'again: allowed');
    });

    t.test('container ioctls: IOMMU ones before SET_IOMMU are EINVAL (iommufd: ENODEV before a group), unknown ones after are ENOTTY; integer ioctls want a number', async (t) => {
      const f = variant.setup();
      const { p } = f;
      const c = p.open('/dev/vfio/vfio');
      t.equal(map(p, c, { vaddr: 0x10000, iova: 0, size: PAGE }), variant.container === 'iommufd' ? -ENODEV : -EINVAL);
      t.equal(p.ioctl(c, VFIO_CHECK_EXTENSION, new Uint8Array(4)), -EINVAL);
      const [c2] = openTyped(p, f.groupOf(f.dma));
      t.equal(p.ioctl(c2, 0x3bff, new Uint8Array(8)), -ENOTTY);
    });

    t.test('a group cannot join a container while a vaddr is invalid (EBUSY), and nothing changes', { skip: variant.skips.has('update-vaddr') && 'no VFIO_UPDATE_VADDR' }, async (t) => {
      const f = variant.setup();
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.dma));
      const va = p.mmap(PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x100000, size: PAGE }), 0);
      t.same(unmap(p, c, { iova: 0x100000, size: PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR }), [0, BigInt(PAGE)]);
      const g2 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
      t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), -EBUSY);
      t.equal(f.host.iommu.groupOf(f.bare)!.owner, undefined, 'the group was not claimed');
    });

    function info(p: import('../../src/host/process.ts').Process, c: number, argsz: number, bufLen = argsz) {
      const bytes = new Uint8Array(bufLen);
      bytes.set(encodeStruct(vfio_iommu_type1_info, { argsz }).subarray(0, bufLen));
      const r = p.ioctl(c, VFIO_IOMMU_GET_INFO, bytes);
      return { r, bytes, v: new StructView(vfio_iommu_type1_info, bytes) };
    }

    /**
     * iommufd_vfio_iommu_get_info(): DMA_AVAIL (12 bytes) then IOVA_RANGE, packed, no migration capability.
     * Page sizes and IOVA ranges are those of the compat IOAS: before a device is attached it has no domain
     * (every page size from PAGE_SIZE up, the whole u64 space); attaching one adds the domain's page sizes
     * and reserves its MSI window and what lies beyond its aperture.
     */
    function compatInfo(t: Test, p: Process, c: number, g: number, bdf: string): void {
      const U64_MAX = 2n ** 64n - 1n;
      const chain = (): { pgsizes: bigint; ids: number[]; ranges: bigint[][] } => {
        const need = info(p, c, vfio_iommu_type1_info.size).v.num('argsz');
        const full = info(p, c, need);
        t.equal(full.r, 0);
        const ids: number[] = [];
        let iovaAt = 0;
        for (let off = full.v.num('cap_offset'); off !== 0; ) {
          const h = new StructView(vfio_info_cap_header, full.bytes.subarray(off));
          ids.push(h.num('id'));
          if (h.num('id') === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) iovaAt = off;
          off = h.num('next');
        }
        const iov = new StructView(vfio_iommu_type1_info_cap_iova_range, full.bytes.subarray(iovaAt));
        const ranges = [...Array(iov.num('nr_iovas')).keys()].map((i) => {
          const r = new StructView(vfio_iova_range, full.bytes.subarray(iovaAt + 16 + 16 * i));
          return [r.big('start'), r.big('end')];
        });
        t.equal(need, 24 + 12 + 16 + 16 * ranges.length, 'argsz: info + DMA_AVAIL + IOVA_RANGE, unpadded');
        return { pgsizes: full.v.big('iova_pgsizes'), ids, ranges };
      };
      const before = chain();
      t.same(before.ids, [VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE], 'no migration capability');
      t.equal(before.pgsizes, U64_MAX & ~BigInt(PAGE - 1), 'no domain: every size from PAGE_SIZE up');
      t.same(before.ranges, [[0n, U64_MAX]], 'no domain: nothing reserved');
      t.ok(p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(bdf + '\0')) >= 0, 'the device opens and attaches');
      const after = chain();
      t.equal(after.pgsizes, BigInt(variant.pgsizes));
      t.same(after.ranges, [[0n, BigInt(variant.msiWindow[0] - 1)], [BigInt(variant.msiWindow[1] + 1), BigInt(variant.apertureEnd)]], 'the MSI window and the aperture appear with the domain');
    }

    t.test(`IOMMU_GET_INFO reports page sizes and a capability chain: migration, DMA available, IOVA ranges without the reserved regions`, async (t) => {
      const f = variant.setup();
      const { p } = f;
      const [c, g] = openTyped(p, f.groupOf(f.dma));
      if (variant.container === 'iommufd') return compatInfo(t, p, c, g, f.dma.bdf);
      const small = info(p, c, vfio_iommu_type1_info.size);
      t.equal(small.r, 0);
      t.equal(small.v.num('flags'), VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
      t.equal(small.v.big('iova_pgsizes'), BigInt(variant.pgsizes));
      t.equal(small.v.num('cap_offset'), 0, 'no room for the chain');
      const need = small.v.num('argsz');
      t.equal(need, 24 + 32 + 16 + 16 + 2 * 16, 'argsz raised to what the chain needs');
      const full = info(p, c, need);
      t.equal(full.r, 0);
      t.equal(full.v.num('cap_offset'), 24);
      const caps: Record<number, number> = {};
      for (let off = full.v.num('cap_offset'); off !== 0; ) {
        const h = new StructView(vfio_info_cap_header, full.bytes.subarray(off));
        caps[h.num('id')] = off;
        t.equal(h.num('version'), 1);
        off = h.num('next');
      }
      t.same(Object.keys(caps).map(Number).sort(), [VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL]);
      const mig = new StructView(vfio_iommu_type1_info_cap_migration, full.bytes.subarray(caps[VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION]));
      t.equal(mig.big('pgsize_bitmap'), BigInt(PAGE));
      t.equal(mig.big('max_dirty_bitmap_size'), 256n * 2n ** 20n);
      const avail = new StructView(vfio_iommu_type1_info_dma_avail, full.bytes.subarray(caps[VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL]));
      t.equal(avail.num('avail'), 65535);
      const at = caps[VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE]!;
      const iov = new StructView(vfio_iommu_type1_info_cap_iova_range, full.bytes.subarray(at));
      t.equal(iov.num('nr_iovas'), 2);
      const ranges = [0, 1].map((i) => {
        const v = new StructView(vfio_iova_range, full.bytes.subarray(at + 16 + 16 * i));
        return [v.big('start'), v.big('end')];
      });
      t.same(ranges, [[0n, BigInt(variant.msiWindow[0] - 1)], [BigInt(variant.msiWindow[1] + 1), BigInt(variant.apertureEnd)]], 'the MSI window is carved out');
    });

    t.test('IOMMU_GET_INFO: argsz below 16 is EINVAL; a buffer shorter than argsz claims is EFAULT', async (t) => {
      const f = variant.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      t.equal(info(p, c, 15, 24).r, -EINVAL);
      t.equal(info(p, c, 200, 24).r, -EFAULT);
      const sixteen = info(p, c, 16, 16);
      t.equal(sixteen.r, 0, 'the first 16 bytes are enough');
      t.equal(new StructView(vfio_iommu_type1_info, sixteen.bytes).big('iova_pgsizes'), BigInt(variant.pgsizes));
    });

    t.test('DMA available counts down with each mapping', { skip: variant.skips.has('dma-entry-limit') && 'no dma_entry_limit' }, async (t) => {
      const f = variant.setup({ vfio: { dmaEntryLimit: 10 } });
      const { p } = f;
      const [c] = openTyped(p, f.groupOf(f.dma));
      const va = p.mmap(PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0, size: PAGE }), 0);
      const { bytes, v } = info(p, c, 200);
      const avail = new StructView(vfio_iommu_type1_info_dma_avail, bytes.subarray(24 + 32));
      t.equal(v.num('flags') & VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_INFO_CAPS);
      t.equal(avail.num('avail'), 9);
      void VFIO_IOMMU_MAP_DMA;
    });

    t.test('iommufd: DMA available is a constant U32_MAX, the first capability (iommufd_fill_cap_dma_avail)', { skip: variant.container !== 'iommufd' && 'iommufd compat only' }, async (t) => {
      const f = variant.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0, size: PAGE }), 0);
      const { bytes, v } = info(p, c, 200);
      t.equal(v.num('cap_offset'), 24);
      const avail = new StructView(vfio_iommu_type1_info_dma_avail, bytes.subarray(24));
      t.equal(avail.num('id'), VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
      t.equal(avail.num('avail'), 0xffff_ffff, 'not counted down: the memory cgroup is the limit');
    });
  });
}

t.test('VFIO_DMA_CC_IOMMU is vfio_domains_have_enforce_cache_coherency(): 1 only when every domain enforces coherency (1 with none); groups join only a domain with the same coherency', async (t) => {
  const { setup } = await import('./fixture.ts');
  const f = setup();
  const { p, driver } = f;
  const c = p.open('/dev/vfio/vfio');
  const cc = () => p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU);
  t.equal(cc(), 0, 'no IOMMU set: 0 (vfio_iommu_type1_check_extension with iommu NULL)');
  // The test driver's paging domains answer enforce_cache_coherency as told (Intel: SC in ECAP; Arm: CANWBS masters).
  driver.coherentDomains = true;
  const g1 = p.open(`/dev/vfio/${f.groupOf(f.dma)}`);
  t.equal(p.ioctl(g1, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
  t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
  t.equal(cc(), 1, 'the one domain enforces coherency');
  // A second group whose domain cannot enforce it gets a domain of its own, and the answer drops to 0.
  driver.coherentDomains = false;
  const g2 = p.open(`/dev/vfio/${f.groupOf(f.bare)}`);
  t.equal(p.ioctl(g2, VFIO_GROUP_SET_CONTAINER, s32(c)), 0);
  const iommu = (await import('../../src/vfio/module.ts')).vfioModule(f.host).groups.get(f.host.iommu.groupOf(f.dma)!)!.container!.iommu!;
  t.equal(iommu.domains.length, 2, 'not joined to the coherent domain');
  t.equal(cc(), 0);
  p.close(g2);
  t.equal(cc(), 1, 'the non-coherent domain left with its group');
});
