import t from 'tap';
import { EADDRINUSE, EBUSY, EEXIST, EFAULT, EINVAL, ENODEV, ENOENT, EOPNOTSUPP, EPERM } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import {
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  iommu_ioas_allow_iovas,
  iommu_ioas_map,
  iommu_iova_range,
  iommu_option,
  iommu_vfio_ioas,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { attach, bind, ioasAlloc, map, PAGE, RW, setup, unmap } from './fixture.ts';

/** IOAS_ALLOW_IOVAS with the ranges written into the process's memory. */
export function allow(p: Process, fd: number, ioas: number, ranges: [number | bigint, number | bigint][]): number {
  const arr = p.mmap(PAGE);
  ranges.forEach(([s, l], i) => p.memWrite(arr + BigInt(i * 16), encodeStruct(iommu_iova_range, { start: BigInt(s), last: BigInt(l) })));
  const b = encodeStruct(iommu_ioas_allow_iovas, { size: iommu_ioas_allow_iovas.size, ioas_id: ioas, num_iovas: ranges.length, allowed_iovas: arr });
  const r = p.ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, b);
  p.munmap(arr, PAGE);
  return r;
}

/** IOMMU_OPTION: [result, val64]. */
export function option(p: Process, fd: number, id: number, op: number, objectId: number, val = 0n): [number, bigint] {
  const b = encodeStruct(iommu_option, { size: iommu_option.size, option_id: id, op, object_id: objectId, val64: val });
  const r = p.ioctl(fd, IOMMU_OPTION, b);
  return [r, new StructView(iommu_option, b).big('val64')];
}

/** IOMMU_VFIO_IOAS: [result, ioas_id]. */
export function vfioIoas(p: Process, fd: number, op: number, ioas = 0): [number, number] {
  const b = encodeStruct(iommu_vfio_ioas, { size: iommu_vfio_ioas.size, op, ioas_id: ioas });
  const r = p.ioctl(fd, IOMMU_VFIO_IOAS, b);
  return [r, new StructView(iommu_vfio_ioas, b).num('ioas_id')];
}

t.test('ALLOW_IOVAS: allocation stays inside the allowed ranges; a new list replaces the old; an empty list lifts it', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const va = f.p.mmap(4 * PAGE);
  t.equal(allow(f.p, f.fd, ioas, [[0x10_0000, 0x10_ffff]]), 0);
  t.same(map(f.p, f.fd, ioas, va, PAGE), [0, 0x10_0000], 'the first allocation is at the start of the allowed range');
  t.equal(allow(f.p, f.fd, ioas, [[0x40_0000, 0x40_ffff], [0x20_0000, 0x20_0fff]]), 0, 'replaced (unsorted input accepted)');
  t.same(map(f.p, f.fd, ioas, va, PAGE), [0, 0x20_0000], 'the lowest allowed range of the new list');
  t.same(map(f.p, f.fd, ioas, va, 2 * PAGE), [0, 0x40_0000], 'too big for the first range: the next one');
  t.same(map(f.p, f.fd, ioas, va, PAGE, 0x90_0000), [0, 0x90_0000], 'FIXED_IOVA is not limited by the allowed list');
  t.equal(allow(f.p, f.fd, ioas, []), 0);
  t.same(map(f.p, f.fd, ioas, va, PAGE), [0, PAGE], 'no list: from PAGE_SIZE');
  t.end();
});

t.test('ALLOW_IOVAS refuses overlapping, empty and reversed ranges, bad pointers and reserved bits, changing nothing', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const va = f.p.mmap(PAGE);
  t.equal(allow(f.p, f.fd, ioas, [[0x10_0000, 0x10_ffff]]), 0);
  t.equal(allow(f.p, f.fd, ioas, [[0x20_0000, 0x2f_ffff], [0x2f_f000, 0x30_ffff]]), -EINVAL, 'overlap');
  t.equal(allow(f.p, f.fd, ioas, [[0x20_0000, 0x20_0000]]), -EINVAL, 'start == last');
  t.equal(allow(f.p, f.fd, ioas, [[0x20_1000, 0x20_0000]]), -EINVAL, 'reversed');
  t.equal(allow(f.p, f.fd, 99, [[0x20_0000, 0x20_ffff]]), -ENOENT, 'unknown IOAS');
  const bad = encodeStruct(iommu_ioas_allow_iovas, { size: iommu_ioas_allow_iovas.size, ioas_id: ioas, num_iovas: 1, allowed_iovas: 0x10n });
  t.equal(f.p.ioctl(f.fd, IOMMU_IOAS_ALLOW_IOVAS, bad), -EFAULT, 'unmapped array');
  const rsv = encodeStruct(iommu_ioas_allow_iovas, { size: iommu_ioas_allow_iovas.size, ioas_id: ioas, __reserved: 1 });
  t.equal(f.p.ioctl(f.fd, IOMMU_IOAS_ALLOW_IOVAS, rsv), -EOPNOTSUPP);
  t.same(map(f.p, f.fd, ioas, va, PAGE), [0, 0x10_0000], 'the first list still rules');
  t.end();
});

t.test('ALLOW_IOVAS and reserved regions exclude each other in both directions (EADDRINUSE)', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const [cdev] = bind(f.p, f.fd, f.vdma.minor);
  // The test driver's sw-msi region is [0x800_0000, 0x80f_ffff].
  t.equal(allow(f.p, f.fd, ioas, [[0x7ff_0000, 0x800_0fff]]), 0);
  t.equal(attach(f.p, cdev, ioas)[0], -EADDRINUSE, 'a device whose reserved region meets an allowed range cannot attach');
  t.equal(f.host.iommu.domainForPasid(f.dma, -1)?.type === 'paging', false, 'nothing attached');
  t.equal(allow(f.p, f.fd, ioas, [[0x100_0000, 0x1ff_ffff]]), 0);
  t.equal(attach(f.p, cdev, ioas)[0], 0, 'clear of the region: attaches');
  t.equal(allow(f.p, f.fd, ioas, [[0x80f_f000, 0x900_0000]]), -EADDRINUSE, 'an allowed range over a reserved region is refused');
  t.equal(allow(f.p, f.fd, ioas, [[0x900_0000, 0x9ff_ffff]]), 0);
  t.end();
});

t.test('IOMMU_OPTION RLIMIT_MODE: get, set needs privilege and an empty context, values 0/1 only', (t) => {
  const f = setup();
  t.same(option(f.p, f.fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0), [0, 0n], 'default: per-user');
  const user = f.spawn({ uid: 1000 });
  const ufd = user.open('/dev/iommu');
  t.equal(option(user, ufd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n)[0], -EPERM, 'CAP_SYS_RESOURCE needed');
  const root = f.spawn({ uid: 0 });
  const rfd = root.open('/dev/iommu');
  t.equal(option(root, rfd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 2n)[0], -EINVAL);
  t.equal(option(root, rfd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 1, 1n)[0], -EOPNOTSUPP, 'object_id must be 0');
  t.equal(option(root, rfd, IOMMU_OPTION_RLIMIT_MODE, 7, 0)[0], -EOPNOTSUPP, 'unknown op');
  t.equal(option(root, rfd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n)[0], 0);
  t.same(option(root, rfd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0), [0, 1n]);
  const ioas = ioasAlloc(root, rfd);
  t.equal(option(root, rfd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 0n)[0], -EBUSY, 'objects exist');
  // mm mode: charged to the mm's locked_vm against RLIMIT_MEMLOCK.
  const [cdev] = bind(root, rfd, f.vdma.minor);
  t.equal(attach(root, cdev, ioas)[0], 0);
  const va = root.mmap(4 * PAGE);
  t.equal(map(root, rfd, ioas, va, 4 * PAGE)[0], 0);
  t.equal(root.mm.lockedVm, 4);
  t.equal(root.mm.pinnedVm, 4);
  root.close(cdev);
  t.equal(root.mm.lockedVm, 0);
  t.equal(option(f.p, f.fd, 99, IOMMU_OPTION_OP_GET, 0)[0], -EOPNOTSUPP, 'unknown option');
  const rsv = encodeStruct(iommu_option, { size: iommu_option.size, option_id: 0, op: IOMMU_OPTION_OP_GET, __reserved: 1 });
  t.equal(f.p.ioctl(f.fd, IOMMU_OPTION, rsv), -EOPNOTSUPP);
  t.end();
});

t.test('IOMMU_OPTION HUGE_PAGES: per IOAS; disabling maps 4K leaves, refused once domains hold mappings', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  t.same(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas), [0, 1n], 'enabled by default');
  t.equal(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, 99)[0], -ENOENT);
  t.equal(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 3n)[0], -EINVAL);
  t.equal(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 0n)[0], 0);
  t.same(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas), [0, 0n]);
  const [cdev] = bind(f.p, f.fd, f.vdma.minor);
  t.equal(attach(f.p, cdev, ioas)[0], 0);
  const va = f.p.mmap(2 ** 21, { hugepage: '2M', populate: true });
  const dom = f.host.iommu.domainForPasid(f.dma, -1)!;
  const before = dom.mapCalls;
  t.equal(map(f.p, f.fd, ioas, va, 2 ** 21, 0x4000_0000)[0], 0);
  t.equal(dom.mapCalls - before, 512, 'one 4K map per page');
  t.equal(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 1n)[0], 0, 'enabling is always allowed');
  t.equal(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 0n)[0], -EINVAL, 'disabling with mapped domains refused');
  t.same(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas), [0, 1n], 'unchanged');
  unmap(f.p, f.fd, ioas, 0, 2n ** 64n - 1n);
  t.equal(option(f.p, f.fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 0n)[0], 0, 'no mappings: allowed again');
  t.end();
});

t.test('IOMMU_VFIO_IOAS: GET is ENODEV until SET; SET takes an IOAS only; CLEAR forgets; destroying the IOAS clears it', (t) => {
  const f = setup();
  t.equal(vfioIoas(f.p, f.fd, IOMMU_VFIO_IOAS_GET)[0], -ENODEV);
  const ioas = ioasAlloc(f.p, f.fd);
  const [, devId] = bind(f.p, f.fd, f.vdma.minor);
  t.equal(vfioIoas(f.p, f.fd, IOMMU_VFIO_IOAS_SET, devId)[0], -ENOENT, 'not an IOAS');
  t.equal(vfioIoas(f.p, f.fd, IOMMU_VFIO_IOAS_SET, 99)[0], -ENOENT);
  t.equal(vfioIoas(f.p, f.fd, IOMMU_VFIO_IOAS_SET, ioas)[0], 0);
  t.same(vfioIoas(f.p, f.fd, IOMMU_VFIO_IOAS_GET), [0, ioas]);
  t.equal(vfioIoas(f.p, f.fd, IOMMU_VFIO_IOAS_CLEAR)[0], 0);
  t.equal(vfioIoas(f.p, f.fd, IOMMU_VFIO_IOAS_GET)[0], -ENODEV);
  t.equal(vfioIoas(f.p, f.fd, 9)[0], -EOPNOTSUPP, 'unknown op');
  const rsv = encodeStruct(iommu_vfio_ioas, { size: iommu_vfio_ioas.size, op: IOMMU_VFIO_IOAS_GET, __reserved: 1 });
  t.equal(f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, rsv), -EOPNOTSUPP);
  t.end();
});

t.test('IOAS_MAP and COPY require only page_offset & (iova_alignment - 1) == 0 (iopt_insert_area): without a domain any IOVA takes any user address; a domain then refuses such an area (EADDRINUSE, iopt_check_iova_alignment)', async (t) => {
  const { IOMMU_IOAS_COPY, iommu_ioas_copy } = await import('../../src/uapi/iommufd.ts');
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const va = f.p.mmap(4 * PAGE);
  // No domain: iova_alignment is 1, so the IOVA's offset in its page need not be the address's.
  t.same(map(f.p, f.fd, ioas, va + 0x10n, PAGE, 0x10_0000), [0, 0x10_0000], 'user_va offset 0x10 at a page-aligned IOVA');
  t.same(map(f.p, f.fd, ioas, va, PAGE, 0x20_0008), [0, 0x20_0008], 'page-aligned user_va at IOVA offset 8');
  const copy = (src: number, dst: number, length: number): number => {
    const b = encodeStruct(iommu_ioas_copy, { size: iommu_ioas_copy.size, flags: 7, dst_ioas_id: ioas, src_ioas_id: ioas, length, dst_iova: dst, src_iova: src });
    return f.p.ioctl(f.fd, IOMMU_IOAS_COPY, b);
  };
  t.equal(copy(0x10_0000, 0x30_0000, PAGE), 0, 'COPY of the offset area to an aligned IOVA');
  // A domain needs every area aligned to its page size, page_offset included.
  const [cdev] = bind(f.p, f.fd, f.vdma.minor);
  t.equal(attach(f.p, cdev, ioas)[0], -EADDRINUSE, 'the offset areas cannot go into a 4K domain');
  t.equal(f.p.mm.pinnedVm, 0, 'nothing pinned by the refused attach');
  t.same(unmap(f.p, f.fd, ioas, 0, 2n ** 64n - 1n), [0, BigInt(3 * PAGE)]);
  t.equal(attach(f.p, cdev, ioas)[0], 0);
  // With the domain, iova_alignment is 4K: a user address off its page is refused whatever the IOVA.
  t.equal(map(f.p, f.fd, ioas, va + 0x10n, PAGE, 0x10_0010)[0], -EINVAL, 'page_offset 0x10 & 0xfff');
  t.equal(map(f.p, f.fd, ioas, va, PAGE, 0x10_0000)[0], 0);
  t.equal(f.p.mm.pinnedVm, 1);
});

t.test('IOAS_MAP of more memory than exists answers the IOVA checks first (iopt_alloc_user_pages pins nothing; iopt_check_iova), then EFAULT', (t) => {
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const va = f.p.mmap(4 * PAGE);
  const huge = (iova: number) => {
    const b = encodeStruct(iommu_ioas_map, { size: iommu_ioas_map.size, flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, user_va: va, length: 1n << 63n, iova });
    return f.p.ioctl(f.fd, IOMMU_IOAS_MAP, b);
  };
  t.equal(map(f.p, f.fd, ioas, va, PAGE, 0x40_0000)[0], 0);
  t.equal(huge(0x10_0000), -EEXIST, 'a 2^63-byte range over an area: -EEXIST, as on the rig');
  t.equal(huge(0x8000_0000_0000), -EFAULT, 'clear of areas: only the pages fail');
  t.end();
});

t.test('with several rules broken, FIXED_IOVA answers in Linux order: the length alignment (iopt_alloc_area_pages), then the IOVA alignment, then wrapping (iopt_check_iova); the same for IOAS_COPY (as the rig answers, difftest errno-domain)', async (t) => {
  const { IOMMU_IOAS_COPY, iommu_ioas_copy } = await import('../../src/uapi/iommufd.ts');
  const { EOVERFLOW } = await import('../../src/uapi/errno.ts');
  const f = setup();
  const ioas = ioasAlloc(f.p, f.fd);
  const [cdev] = bind(f.p, f.fd, f.vdma.minor);
  t.equal(attach(f.p, cdev, ioas)[0], 0, 'a domain: iova_alignment 4 KiB');
  const va = f.p.mmap(4 * PAGE, { populate: true });
  const at = (iova: bigint, length: number) => {
    const b = encodeStruct(iommu_ioas_map, { size: iommu_ioas_map.size, flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, user_va: va, length, iova });
    return f.p.ioctl(f.fd, IOMMU_IOAS_MAP, b);
  };
  t.equal(at(0xffff_ffff_ffff_e800n, 0x2000), -EINVAL, 'an unaligned IOVA that also wraps: -EINVAL');
  t.equal(at(0xffff_ffff_ffff_f000n, 0x1800), -EINVAL, 'an unaligned length that also wraps: -EINVAL');
  t.equal(at(0xffff_ffff_ffff_f000n, 0x2000), -EOVERFLOW, 'aligned and wrapping: -EOVERFLOW');
  t.equal(at(0xfee0_0000n, 0x1800), -EINVAL, 'an unaligned length in the MSI window: -EINVAL');
  t.equal(map(f.p, f.fd, ioas, va, 2 * PAGE, 0x10_0000)[0], 0);
  const copy = (dst: bigint, length: number) => {
    const b = encodeStruct(iommu_ioas_copy, { size: iommu_ioas_copy.size, flags: 7, dst_ioas_id: ioas, src_ioas_id: ioas, length, dst_iova: dst, src_iova: 0x10_0000 });
    return f.p.ioctl(f.fd, IOMMU_IOAS_COPY, b);
  };
  t.equal(copy(0xffff_ffff_ffff_e800n, 0x2000), -EINVAL, 'COPY to an unaligned IOVA that wraps: -EINVAL');
  t.equal(copy(0xffff_ffff_ffff_f000n, 0x2000), -EOVERFLOW, 'COPY aligned and wrapping: -EOVERFLOW');
  t.equal(f.p.mm.pinnedVm, 2, 'only the one area pinned');
});
