import t from 'tap';
import { EEXIST, ENOMEM } from '../../src/uapi/errno.ts';
import { VFIO_GROUP_UNSET_CONTAINER } from '../../src/uapi/vfio.ts';
import { domainOf, map, openAttached, openTyped, PAGE, unmap, VARIANTS } from './fixture.ts';

for (const v of VARIANTS) {
  t.test(v.name, async (t) => {

    t.test('each pinned page is charged to RLIMIT_MEMLOCK; over the limit is ENOMEM with nothing left pinned', async (t) => {
      const f = v.setup({ proc: { memlockLimit: 16 * PAGE } });
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(2048 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 10 * PAGE }), 0);
      t.equal(p.mm.lockedVm, 10);
      t.equal(map(p, c, { vaddr: va + BigInt(10 * PAGE), iova: 0x20_0000, size: 7 * PAGE }), -ENOMEM);
      t.equal(p.mm.lockedVm, 10, 'the failed map charged nothing');
      t.equal(p.mm.pinnedVm, 10, 'and pinned nothing');
      t.equal(map(p, c, { vaddr: va + BigInt(10 * PAGE), iova: 0x20_0000, size: 6 * PAGE }), 0, 'exactly at the limit');
      t.equal(p.mm.lockedVm, 16);
      t.equal(map(p, c, { vaddr: va, iova: 0x1000_0000, size: 2048 * PAGE }), -ENOMEM, 'a big map fails after its first batch');
      t.equal(p.mm.pinnedVm, 16);
      t.equal(domainOf(f, f.dma).iovaToPhys(0x1000_0000), -1);
    });

    t.test('CAP_IPC_LOCK is not limited (type1 still counts it; iommufd does not account it at all)', async (t) => {
      const f = v.setup({ proc: { memlockLimit: PAGE, capIpcLock: true } });
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(64 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 64 * PAGE }), 0);
      // vfio_lock_acct() charges locked_vm and only skips the limit check; iopt_alloc_pages() makes
      // CAP_IPC_LOCK pages IOPT_PAGES_ACCOUNT_NONE.
      t.equal(p.mm.lockedVm, v.container === 'iommufd' ? 0 : 64);
      t.equal(p.mm.pinnedVm, 64, 'pinned either way');
    });

    t.test('locked memory is released on unmap', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c] = openAttached(p, f);
      const va = p.mmap(8 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 8 * PAGE }), 0);
      t.same(unmap(p, c, { iova: 0x10_0000, size: 8 * PAGE }), [0, BigInt(8 * PAGE)]);
      t.equal(p.mm.lockedVm, 0);
      t.equal(p.mm.pinnedVm, 0);
    });

    t.test('locked memory and pins are released when the container goes (last group leaves, all fds closed)', async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c, g, d] = openAttached(p, f);
      const va = p.mmap(8 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 8 * PAGE }), 0);
      t.equal(p.close(c), 0);
      t.equal(p.mm.lockedVm, 8, 'the group still holds the container');
      t.equal(p.close(g), 0);
      t.equal(p.mm.lockedVm, 8, 'the device fd holds the group file');
      t.equal(p.close(d), 0);
      t.equal(p.mm.lockedVm, 0);
      t.equal(p.mm.pinnedVm, 0);
      t.equal(f.host.iommu.groupOf(f.dma)!.domain, f.host.iommu.groupOf(f.dma)!.defaultDomain, 'back on the default domain');
    });

    t.test('UNSET_CONTAINER of the last group releases the IOMMU and its mappings', { skip: v.container === 'iommufd' && 'type1 rule; iommufd below' }, async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c, g] = openTyped(p, f.groupOf(f.dma));
      const va = p.mmap(4 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), 0);
      t.equal(p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
      t.equal(p.mm.lockedVm, 0);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), -22, 'the container is back to no IOMMU');
    });

    // iommufd pins pages only while a domain holds them (iopt_area_fill_domain); the last domain leaving unfills
    // and unpins (iopt_table_remove_domain), but the mappings belong to the IOAS, which the iommufd keeps.
    t.test('iommufd: closing the last device unpins and uncharges; UNSET_CONTAINER then leaves the mappings in the compat IOAS', { skip: v.container !== 'iommufd' && 'iommufd compat only' }, async (t) => {
      const f = v.setup();
      const { p } = f;
      const [c, g, d] = openAttached(p, f);
      const va = p.mmap(4 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), 0);
      t.equal(p.mm.lockedVm, 4);
      t.equal(p.close(d), 0);
      t.equal(p.mm.lockedVm, 0, 'no domain: nothing pinned or charged');
      t.equal(p.mm.pinnedVm, 0);
      t.equal(p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 4 * PAGE }), -EEXIST, 'the mapping is still in the compat IOAS');
      t.same(unmap(p, c, { iova: 0x10_0000, size: 4 * PAGE }), [0, BigInt(4 * PAGE)]);
    });

    t.test('process exit closes the fds and releases every pin; no page leaks', async (t) => {
      const f = v.setup();
      const inUse = f.host.allocator.pagesInUse;
      const p = f.spawn();
      const [c] = openAttached(p, f);
      const va = p.mmap(300 * PAGE, { populate: true });
      t.equal(map(p, c, { vaddr: va, iova: 0x10_0000, size: 300 * PAGE }), 0);
      p.exit();
      if (v.container === 'type1') t.equal(f.board.counters.get('vfio.pinned_pages'), 0);
      t.equal(f.host.allocator.pagesInUse, inUse, 'every page and table page went back');
    });
  });
}
