/**
 * IOMMU_IOAS_MAP_FILE (iommufd_ioas_map_file, iopt_map_file_pages) and
 * IOMMU_IOAS_CHANGE_PROCESS (iommufd_ioas_change_process): a memfd's pages
 * mapped into an IOAS and pinned straight from its page cache
 * (memfd_pin_folios, only within the file's size), charged to the mapping
 * process; and the live-update hand-over of those charges to another
 * process, refused while any mapping of the context is not file-backed.
 */
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import type { Process } from '../../src/host/process.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { EBADF, EINVAL, ENOENT, ENOMEM, EOPNOTSUPP, EOVERFLOW } from '../../src/uapi/errno.ts';
import {
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  iommu_ioas_change_process,
  iommu_ioas_map_file,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { attach, bind, ioasAlloc, map, PAGE, RW, unmap } from './fixture.ts';

type MapFileFields = Partial<Record<keyof typeof iommu_ioas_map_file.fields, number | bigint>>;

function mapFile(p: Process, fd: number, f: MapFileFields, size = iommu_ioas_map_file.size): [number, number] {
  const b = encodeStruct(iommu_ioas_map_file, { size, flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ...f });
  const r = p.ioctl(fd, IOMMU_IOAS_MAP_FILE, b);
  return [r, Number(new StructView(iommu_ioas_map_file, b).big('iova'))];
}

const changeProcess = (p: Process, fd: number, rsv = 0) =>
  p.ioctl(fd, IOMMU_IOAS_CHANGE_PROCESS, encodeStruct(iommu_ioas_change_process, { size: iommu_ioas_change_process.size, __reserved: rsv }));

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: IOAS_MAP_FILE maps a memfd; the device and every MAP_SHARED mapping of the file see the same pages; pinned only within the file's size`, async (t) => {
    const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
    const dev = m.device('0000:00:01.0');
    const p = m.host.spawn({ memlockLimit: 2 ** 30 });
    const fd = p.open('/dev/iommu');
    const ioas = ioasAlloc(p, fd);
    const mfd = p.memfd_create('guest-ram');
    t.equal(p.ftruncate(mfd, 4 * PAGE), 0);
    const va = p.mmap(4 * PAGE, { fd: mfd });
    t.equal(p.memWrite(va + BigInt(PAGE), new TextEncoder().encode('in the memfd')), 12);

    // The errnos of iommufd_ioas_map_file / iopt_map_file_pages, before anything is mapped.
    t.equal(iommu_ioas_map_file.size, 40);
    t.equal(mapFile(p, fd, { ioas_id: ioas, fd: mfd, length: PAGE, iova: 0x10_0000 }, 32)[0], -EINVAL, 'size below offsetofend(iova)');
    t.equal(mapFile(p, fd, { flags: 8, ioas_id: ioas, fd: mfd, length: PAGE })[0], -EOPNOTSUPP, 'unknown flag');
    t.equal(mapFile(p, fd, { ioas_id: ioas, fd: mfd, length: 2n ** 64n - 1n })[0], -EOVERFLOW, 'length ULONG_MAX');
    t.equal(mapFile(p, fd, { flags: IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, fd: mfd, length: PAGE })[0], -EINVAL, 'neither READABLE nor WRITEABLE');
    t.equal(mapFile(p, fd, { ioas_id: 999, fd: mfd, length: PAGE })[0], -ENOENT, 'no such IOAS');
    t.equal(mapFile(p, fd, { ioas_id: ioas, fd: mfd, length: 0, iova: 0x10_0000 })[0], -EINVAL, 'length 0');
    t.equal(mapFile(p, fd, { ioas_id: ioas, fd: mfd, start: 2n ** 64n - BigInt(PAGE), length: 2 * PAGE, iova: 0x10_0000 })[0], -EOVERFLOW, 'start + length wraps');
    t.equal(mapFile(p, fd, { ioas_id: ioas, fd: 77, length: PAGE, iova: 0x10_0000 })[0], -EBADF, 'no such fd');

    // Without a domain nothing is pinned, so even a range past the file's end maps.
    t.equal(mapFile(p, fd, { ioas_id: ioas, fd: mfd, start: PAGE, length: 8 * PAGE, iova: 0x40_0000 })[0], 0, 'past the end, no domain yet');
    const [cdev] = bind(p, fd, 0);
    t.equal(attach(p, cdev, ioas)[0], -EINVAL, 'a domain must pin it: memfd_pin_folios refuses a range past i_size');
    t.same(unmap(p, fd, ioas, 0x40_0000, 8 * PAGE), [0, BigInt(8 * PAGE)]);
    t.equal(attach(p, cdev, ioas)[0], 0);
    t.equal(mapFile(p, fd, { ioas_id: ioas, fd: mfd, start: PAGE, length: 4 * PAGE, iova: 0x40_0000 })[0], -EINVAL, 'with a domain the pin fails at once');
    t.equal(p.mm.pinnedVm, 0, 'and left nothing pinned');

    const [r, iova] = mapFile(p, fd, { ioas_id: ioas, fd: mfd, start: PAGE, length: 2 * PAGE, iova: 0x40_0000 });
    t.equal(r, 0);
    t.equal(iova, 0x40_0000);
    t.equal(p.mm.pinnedVm, 2, 'pinned from the page cache, counted in the mapper\'s mm');
    t.equal(p.user.lockedVm, 2, 'and charged to its user');
    dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    const rd = dev.dmaRead(0x40_0000n, 12);
    t.equal(rd.ok && new TextDecoder().decode(rd.data), 'in the memfd', 'the device reads what the process wrote through its mapping');
    t.ok(dev.dmaWrite(0x40_1000n, new Uint8Array([0xee])).ok);
    t.same(p.memRead(va + BigInt(2 * PAGE), 1), new Uint8Array([0xee]), 'and the process sees what the device wrote');
    t.same(p.pread(mfd, 1, BigInt(2 * PAGE)), new Uint8Array([0xee]), 'so does the file');

    // The mapping holds the file: closing the fd and unmapping the process's mapping keep the pages.
    t.equal(p.close(mfd), 0);
    t.equal(p.munmap(va, 4 * PAGE), 0);
    t.equal(m.host.memfds.size, 1, 'the IOAS mapping holds the memfd');
    t.ok(dev.dmaRead(0x40_0000n, 1).ok);
    t.same(unmap(p, fd, ioas, 0x40_0000, 2 * PAGE), [0, BigInt(2 * PAGE)]);
    t.equal(m.host.memfds.size, 0, 'released with the last area');
    t.equal(p.mm.pinnedVm, 0);
    t.equal(p.user.lockedVm, 0);
  });
}

t.test('IOAS_CHANGE_PROCESS: refused (EINVAL) while any mapping is not file-backed; moves every file mapping\'s charges to the caller, all or nothing (ENOMEM over its limit)', async (t) => {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const old = m.host.spawn({ uid: 1000, memlockLimit: 12 * PAGE });
  const fd = old.open('/dev/iommu');
  const ioas = ioasAlloc(old, fd);
  const [cdev] = bind(old, fd, 0);
  t.equal(attach(old, cdev, ioas)[0], 0);
  const mfd = old.memfd_create('ram');
  t.equal(old.ftruncate(mfd, 8 * PAGE), 0);
  t.equal(mapFile(old, fd, { ioas_id: ioas, fd: mfd, length: 8 * PAGE, iova: 0x10_0000 })[0], 0);
  const anon = old.mmap(PAGE, { populate: true });
  t.equal(map(old, fd, ioas, anon, PAGE, 0x80_0000)[0], 0, 'one user-memory mapping');
  t.equal(changeProcess(old, fd, 1), -EOPNOTSUPP, '__reserved');
  t.equal(changeProcess(old, fd), -EINVAL, 'a mapping that is not IOMMU_IOAS_MAP_FILE');
  t.same(unmap(old, fd, ioas, 0x80_0000, PAGE), [0, BigInt(PAGE)]);
  t.equal(old.mm.pinnedVm, 8);
  t.equal(old.user.lockedVm, 8);

  // The next process (a live update) inherits the iommufd by fork, with the same 12-page limit.
  const next = old.fork();
  t.equal(next.mm.pinnedVm, 0, 'the child pinned nothing');
  // charge_current() charges the caller before the old owner is uncharged: 8 + 8 pages > 12.
  t.equal(changeProcess(next, fd), -ENOMEM, 'over the caller\'s RLIMIT_MEMLOCK while both hold the charge');
  t.equal(old.mm.pinnedVm, 8, 'nothing moved');
  t.equal(next.mm.pinnedVm, 0);
  t.equal(old.user.lockedVm, 8);
  t.same(unmap(old, fd, ioas, 0x10_0000 + 4 * PAGE, 4 * PAGE)[0], -ENOENT, 'areas are unmapped whole');
  old.exit();
  // With the parent gone its pins stay (the IOAS holds them); the child can take them now the old
  // charge ... is still there: the user_struct is shared, so 8 + 8 > 12 still.
  t.equal(changeProcess(next, fd), -ENOMEM);
  t.same(unmap(next, fd, ioas, 0x10_0000, 8 * PAGE), [0, BigInt(8 * PAGE)]);
  const mfd2 = next.memfd_create('ram2');
  t.equal(next.ftruncate(mfd2, 4 * PAGE), 0);
  t.equal(mapFile(next, fd, { ioas_id: ioas, fd: mfd2, length: 4 * PAGE, iova: 0x10_0000 })[0], 0);
  t.equal(next.mm.pinnedVm, 4);
  t.equal(changeProcess(next, fd), 0, 'the caller already is the source: nothing to move');
  t.equal(next.mm.pinnedVm, 4);
  t.equal(next.user.lockedVm, 4);
});

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: IOAS_CHANGE_PROCESS moves pinned_vm and the locked-memory charge to the caller (need_charge_update, charge_current, change_mm)`, async (t) => {
    const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
    const old = m.host.spawn({ memlockLimit: 64 * PAGE });
    const fd = old.open('/dev/iommu');
    const ioas = ioasAlloc(old, fd);
    const [cdev] = bind(old, fd, 0);
    t.equal(attach(old, cdev, ioas)[0], 0);
    const mfd = old.memfd_create('ram');
    t.equal(old.ftruncate(mfd, 8 * PAGE), 0);
    t.equal(mapFile(old, fd, { ioas_id: ioas, fd: mfd, length: 8 * PAGE, iova: 0x10_0000 })[0], 0);
    const next = old.fork();
    t.equal(changeProcess(next, fd), 0);
    t.equal(next.mm.pinnedVm, 8, 'pinned_vm counts in the caller\'s mm');
    t.equal(old.mm.pinnedVm, 0);
    t.equal(next.user.lockedVm, 8, 'one charge on the shared user_struct');
    old.exit();
    m.device('0000:00:01.0').config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    t.ok(m.device('0000:00:01.0').dmaRead(0x10_0000n, 4).ok, 'the device keeps its mapping through the hand-over');
    t.same(unmap(next, fd, ioas, 0x10_0000, 8 * PAGE), [0, BigInt(8 * PAGE)]);
    t.equal(next.mm.pinnedVm, 0, 'unpinned against the new owner');
    t.equal(next.user.lockedVm, 0);
  });
}

t.test('IOAS_CHANGE_PROCESS leaves unaccounted pages (CAP_IPC_LOCK: IOPT_PAGES_ACCOUNT_NONE) counted in the old mm\'s pinned_vm (need_charge_update is false for them), as Linux 7.3 does (VmPin on the rig: 32 kB stays with the parent)', async (t) => {
  const m = createMachine('q35-vtd', { ramBytes: 256 * 2 ** 20 });
  const old = m.host.spawn({ capIpcLock: true });
  const fd = old.open('/dev/iommu');
  const ioas = ioasAlloc(old, fd);
  const [cdev] = bind(old, fd, 0);
  t.equal(attach(old, cdev, ioas)[0], 0);
  const mfd = old.memfd_create('ram');
  t.equal(old.ftruncate(mfd, 8 * PAGE), 0);
  t.equal(mapFile(old, fd, { ioas_id: ioas, fd: mfd, length: 8 * PAGE, iova: 0x10_0000 })[0], 0);
  t.equal(old.mm.pinnedVm, 8);
  t.equal(old.user.lockedVm, 0, 'not charged');
  const next = old.fork();
  t.equal(changeProcess(next, fd), 0);
  t.equal(old.mm.pinnedVm, 8, 'pinned_vm stays where it was');
  t.equal(next.mm.pinnedVm, 0);
});
