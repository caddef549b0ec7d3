/**
 * VFIO container compatibility served by iommufd (drivers/iommu/iommufd/
 * vfio_compat.c): the type1 ioctls on an iommufd fd, and a machine whose
 * /dev/vfio/vfio is an iommufd (CONFIG_IOMMUFD_VFIO_CONTAINER) running the
 * legacy container sequence unchanged.
 */
import t from 'tap';
import { createMachine, type Machine } from '../../machines/machine.ts';
import { EEXIST, EINVAL, ENODEV, ENOENT, ENOTTY } from '../../src/uapi/errno.ts';
import type { Process } from '../../src/host/process.ts';
import { IOMMU_VFIO_IOAS, IOMMU_VFIO_IOAS_GET, IOMMU_VFIO_IOAS_SET, iommu_vfio_ioas } from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import {
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  vfio_iommu_type1_info,
} from '../../src/uapi/vfio.ts';
import { VfioClient } from '../../src/vfio/client.ts';
import { ioasAlloc } from './fixture.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';

const PAGE = 4096;
const DMA0 = '0000:00:01.0';
const KINDS = ['virt-smmuv3', 'q35-vtd'] as const;

function vfioIoas(p: Process, fd: number, op: number, id = 0): [number, number] {
  const b = encodeStruct(iommu_vfio_ioas, { size: iommu_vfio_ioas.size, op, ioas_id: id });
  const r = p.ioctl(fd, IOMMU_VFIO_IOAS, b);
  return [r, new StructView(iommu_vfio_ioas, b).num('ioas_id')];
}

/** The legacy sequence on /dev/vfio/vfio: container, group joined, IOMMU type set, device fd. */
function legacy(m: Machine, type = VFIO_TYPE1v2_IOMMU, memlockLimit = 64 * 2 ** 20) {
  const p = m.host.spawn({ memlockLimit });
  const v = new VfioClient(p);
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(`/dev/vfio/${m.host.iommu.groupOf(m.device(DMA0))!.id}`);
  t.ok(c >= 0 && g >= 0, 'container and group open');
  t.equal(v.setContainer(g, c), 0, 'SET_CONTAINER takes the iommufd');
  t.equal(v.setIommu(c, type), 0, 'SET_IOMMU');
  const dev = v.deviceFd(g, DMA0);
  t.ok(dev >= 0, 'GET_DEVICE_FD binds the device and attaches it to the compat IOAS');
  m.device(DMA0).config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
  return { p, v, c, g, dev };
}

t.test('on /dev/iommu: the container ioctls need a compat IOAS; what the compat layer does not do is refused', async (t) => {
  const m = createMachine('virt-smmuv3');
  const p = m.host.spawn();
  const v = new VfioClient(p);
  const fd = p.open('/dev/iommu');
  t.equal(v.apiVersion(fd), 0, 'VFIO_API_VERSION');
  t.equal(v.checkExtension(fd, VFIO_TYPE1_IOMMU), 1);
  t.equal(v.checkExtension(fd, VFIO_TYPE1v2_IOMMU), 1);
  t.equal(v.checkExtension(fd, VFIO_UNMAP_ALL), 1);
  t.equal(v.checkExtension(fd, VFIO_UPDATE_VADDR), 0, 'UPDATE_VADDR is not offered');
  t.equal(v.checkExtension(fd, VFIO_TYPE1_NESTING_IOMMU), 0, 'nesting is not offered');
  t.equal(v.checkExtension(fd, VFIO_DMA_CC_IOMMU), -ENODEV, 'DMA_CC_IOMMU asks the compat IOAS: none yet');
  t.equal(v.setIommu(fd, VFIO_TYPE1v2_IOMMU), -ENODEV, 'no compat IOAS: as VFIO fails SET_IOMMU without a group');
  t.equal(v.setIommu(fd, 2), -EINVAL, 'SPAPR is not a type1');
  const buf = p.mmap(4 * PAGE);
  t.equal(v.mapDma(fd, { vaddr: buf, iova: 0x10_0000n, size: 4 * PAGE }), -ENODEV);
  const ioas = ioasAlloc(p, fd);
  t.equal(vfioIoas(p, fd, IOMMU_VFIO_IOAS_SET, ioas)[0], 0);
  t.equal(v.setIommu(fd, VFIO_TYPE1v2_IOMMU), 0);
  t.equal(v.checkExtension(fd, VFIO_DMA_CC_IOMMU), 1, 'no HWPT on the IOAS: coherent');
  t.equal(v.mapDma(fd, { vaddr: buf, iova: 0x10_0000n, size: 4 * PAGE, flags: VFIO_DMA_MAP_FLAG_VADDR }), -EINVAL, 'MAP_FLAG_VADDR refused');
  t.equal(v.mapDma(fd, { vaddr: buf, iova: 0x10_0000n, size: 4 * PAGE }), 0, 'mapped in the IOAS');
  t.equal(v.mapDma(fd, { vaddr: buf, iova: 0x10_0000n, size: PAGE }), -EEXIST);
  t.equal(v.unmapDma(fd, { iova: 0x10_0000n, size: 4 * PAGE, flags: VFIO_DMA_UNMAP_FLAG_VADDR }), -EINVAL, 'UNMAP_FLAG_VADDR refused');
  t.equal(v.unmapDma(fd, { iova: 0x10_0000n, size: 4 * PAGE, bitmap: { pgsize: BigInt(PAGE), size: 8n, data: buf } }), -EINVAL, 'GET_DIRTY_BITMAP refused');
  t.equal(p.ioctl(fd, VFIO_IOMMU_DIRTY_PAGES, new Uint8Array(16)), -ENOTTY, 'DIRTY_PAGES is not an ioctl here');
  t.equal(v.unmapDma(fd, { iova: 0x10_0000n, size: 4 * PAGE }), BigInt(4 * PAGE));
  t.equal(p.mm.pinnedVm, 0, 'nothing was pinned: no domain');
});

t.test('GET_INFO: page sizes, then DMA_AVAIL (12 bytes, U32_MAX) and IOVA_RANGE packed without padding; a short argsz learns the size', async (t) => {
  const m = createMachine('q35-vtd', { vfioContainer: 'iommufd' });
  const { p, c } = legacy(m);
  const small = encodeStruct(vfio_iommu_type1_info, { argsz: vfio_iommu_type1_info.size });
  t.equal(p.ioctl(c, VFIO_IOMMU_GET_INFO, small), 0);
  const s = new StructView(vfio_iommu_type1_info, small);
  const need = s.num('argsz');
  t.equal(s.num('flags'), VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
  t.equal(s.num('cap_offset'), 0, 'no room: no chain');
  t.equal((need - 24 - 12 - 16) % 16, 0, 'argsz = info + dma_avail + iova_range header + ranges');
  t.equal(s.big('iova_pgsizes') & BigInt(PAGE - 1), 0n, 'nothing below PAGE_SIZE');
  t.ok((s.big('iova_pgsizes') & BigInt(PAGE)) !== 0n, '4K supported');
  const buf = new Uint8Array(need);
  buf.set(encodeStruct(vfio_iommu_type1_info, { argsz: need }));
  t.equal(p.ioctl(c, VFIO_IOMMU_GET_INFO, buf), 0);
  const dv = new DataView(buf.buffer);
  t.equal(dv.getUint32(16, true), 24, 'cap_offset');
  t.equal(dv.getUint16(24, true), VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
  t.equal(dv.getUint32(28, true), 36, 'next: right after the 12-byte DMA_AVAIL');
  t.equal(dv.getUint32(32, true), 0xffffffff, 'avail = U32_MAX');
  t.equal(dv.getUint16(36, true), VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
  t.equal(dv.getUint32(40, true), 0, 'last capability');
  const nr = dv.getUint32(44, true);
  t.equal(52 + nr * 16, need);
  const ranges = [...Array(nr).keys()].map((i) => [dv.getBigUint64(52 + i * 16, true), dv.getBigUint64(60 + i * 16, true)]);
  const info = new VfioClient(p).iommuInfo(c);
  t.same(typeof info === 'number' ? info : info.iovaRanges.map((r) => [r.start, r.end]), ranges, 'the client reads the same chain');
  t.ok(ranges.every(([a, b]) => a! <= b!), 'ranges are ordered');
});

for (const kind of KINDS) {
  t.test(`${kind}: /dev/vfio/vfio provided by iommufd: the legacy TYPE1v2 sequence maps, DMAs and unmaps, charging mm->locked_vm`, async (t) => {
    const m = createMachine(kind, { vfioContainer: 'iommufd' });
    const { p, v, c, g, dev } = legacy(m);
    t.equal(v.groupStatus(g) & 3, 3, 'CONTAINER_SET | VIABLE');
    const [, ioasId] = vfioIoas(p, c, IOMMU_VFIO_IOAS_GET);
    t.ok(ioasId > 0, 'the compat IOAS is an ordinary object');
    const buf = p.mmap(16 * PAGE);
    p.memWrite(buf, new Uint8Array([0xab, 0xcd]));
    t.equal(v.mapDma(c, { vaddr: buf, iova: 0x40_0000n, size: 16 * PAGE }), 0);
    t.equal(p.mm.pinnedVm, 16, 'pinned at once: the device is attached');
    t.equal(p.mm.lockedVm, 16, 'charged to the mm, as VFIO does');
    t.equal(p.user.lockedVm, 0, 'not to the user');
    const r = m.device(DMA0).dmaRead(0x40_0000n, 2);
    t.same(r.ok ? [...r.data!] : r, [0xab, 0xcd], 'the device reads the buffer through the IOMMU');
    t.equal(v.mapDma(c, { vaddr: buf, iova: 0x40_0000n + BigInt(PAGE), size: PAGE }), -EEXIST, 'overlap: EEXIST');
    t.equal(v.mapDma(c, { vaddr: buf + 1n, iova: 0x80_0000n, size: PAGE }), -EINVAL, 'vaddr not page aligned');
    t.equal(v.mapDma(c, { vaddr: buf, iova: 0x80_0001n, size: PAGE }), -EINVAL, 'iova not aligned');
    t.equal(v.mapDma(c, { vaddr: buf, iova: 0x80_0000n, size: PAGE + 1 }), -EINVAL, 'size not aligned');
    t.equal(v.mapDma(c, { vaddr: buf, iova: 0x80_0000n, size: 0 }), -EINVAL, 'zero size');
    t.equal(v.unmapDma(c, { iova: 0x40_0000n, size: 4 * PAGE }), -ENOENT, 'TYPE1v2: unmapping part of a mapping is refused');
    t.equal(v.unmapDma(c, { iova: 0x100_0000n, size: PAGE }), 0n, 'an empty range unmaps nothing and succeeds');
    t.equal(v.unmapDma(c, { iova: 1n, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL }), -EINVAL, 'UNMAP_ALL with an iova');
    t.equal(v.unmapDma(c, { iova: 0n, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL }), BigInt(16 * PAGE), 'UNMAP_ALL');
    t.equal(m.device(DMA0).dmaRead(0x40_0000n, 2).ok, false, 'unmapped IOVA faults');
    t.equal(p.mm.pinnedVm, 0);
    t.equal(p.mm.lockedVm, 0);
    t.equal(v.mapDma(c, { vaddr: buf, iova: 0x40_0000n, size: 16 * PAGE }), 0);
    for (const fd of [dev, g, c]) t.equal(p.close(fd), 0);
    t.equal(p.mm.pinnedVm, 0, 'closing every fd releases the context, its IOAS and its pins');
    t.equal(p.mm.lockedVm, 0);
    t.equal(m.device(DMA0).dmaRead(0x40_0000n, 2).ok, false, 'the device is blocked again');
  });
}

t.test('TYPE1 on iommufd: large IOPTEs are never used, so any page-aligned part of a mapping can be unmapped', async (t) => {
  const m = createMachine('virt-smmuv3', { vfioContainer: 'iommufd' });
  const { p, v, c } = legacy(m, VFIO_TYPE1_IOMMU);
  const buf = p.mmap(2 ** 21, { hugepage: '2M' });
  t.equal(v.mapDma(c, { vaddr: buf, iova: 0x20_0000n, size: 2 ** 21 }), 0);
  t.equal(p.mm.pinnedVm, 512);
  t.equal(v.unmapDma(c, { iova: 0x20_0000n + BigInt(16 * PAGE), size: 4 * PAGE }), BigInt(4 * PAGE), 'the middle goes');
  t.equal(p.mm.pinnedVm, 508, 'its pages are unpinned');
  t.equal(p.mm.lockedVm, 508, 'and uncharged');
  const dev = m.device(DMA0);
  t.equal(dev.dmaRead(0x20_0000n + BigInt(17 * PAGE), 4).ok, false, 'the hole faults');
  t.ok(dev.dmaRead(0x20_0000n + BigInt(15 * PAGE), 4).ok, 'below the hole still maps');
  t.ok(dev.dmaRead(0x20_0000n + BigInt(20 * PAGE), 4).ok, 'above the hole still maps');
  t.equal(v.unmapDma(c, { iova: 0x20_0000n, size: PAGE }), BigInt(PAGE), 'the first page alone');
  t.equal(v.unmapDma(c, { iova: 0n, size: 0, flags: VFIO_DMA_UNMAP_FLAG_ALL }), BigInt(2 ** 21 - 5 * PAGE), 'UNMAP_ALL counts what was left');
  t.equal(p.mm.pinnedVm, 0);
  t.equal(p.mm.lockedVm, 0);
});

t.test('TYPE1v2 on iommufd: the same cut is refused, the mapping stays whole', async (t) => {
  const m = createMachine('virt-smmuv3', { vfioContainer: 'iommufd' });
  const { p, v, c } = legacy(m);
  const buf = p.mmap(2 ** 21, { hugepage: '2M' });
  t.equal(v.mapDma(c, { vaddr: buf, iova: 0x20_0000n, size: 2 ** 21 }), 0);
  t.equal(v.unmapDma(c, { iova: 0x20_0000n + BigInt(16 * PAGE), size: 4 * PAGE }), -ENOENT);
  t.equal(p.mm.pinnedVm, 512);
  t.ok(m.device(DMA0).dmaRead(0x20_0000n + BigInt(17 * PAGE), 4).ok, 'still mapped');
});

t.test('SET_CONTAINER with an iommufd: the group is set, UNSET lets it go; locked memory is limited per mm', async (t) => {
  const m = createMachine('q35-vtd', { vfioContainer: 'iommufd' });
  const { p, v, c, g, dev } = legacy(m, VFIO_TYPE1v2_IOMMU, 8 * PAGE);
  const buf = p.mmap(16 * PAGE);
  t.equal(v.mapDma(c, { vaddr: buf, iova: 0x40_0000n, size: 16 * PAGE }), -12, 'over RLIMIT_MEMLOCK: ENOMEM');
  t.equal(p.mm.lockedVm, 0, 'nothing charged');
  t.equal(p.mm.pinnedVm, 0, 'nothing pinned');
  t.equal(v.mapDma(c, { vaddr: buf, iova: 0x40_0000n, size: 8 * PAGE }), 0, 'within the limit');
  t.equal(v.setContainer(g, c), -EINVAL, 'already set');
  t.equal(p.close(dev), 0);
  t.equal(v.unsetContainer(g), 0);
  t.equal(v.groupStatus(g) & 2, 0, 'CONTAINER_SET clear');
  t.equal(v.deviceFd(g, DMA0), -EINVAL, 'no iommu: no device fd');
  t.equal(p.mm.pinnedVm, 0, 'the device left the IOAS: nothing pinned');
  t.equal(v.setContainer(g, c), 0, 'set again');
  const dev2 = v.deviceFd(g, DMA0);
  t.ok(dev2 >= 0);
  t.equal(p.mm.pinnedVm, 8, 'attached again: the existing mapping is pinned');
});
