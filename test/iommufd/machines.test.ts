import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { CFG, COMMAND } from '../../src/pci/header.ts';
import { attach, bind, ioasAlloc, map, PAGE, unmap } from './fixture.ts';
import { EINVAL } from '../../src/uapi/errno.ts';
import { IOMMU_DESTROY, IOMMU_HWPT_ALLOC, IOMMU_HWPT_ALLOC_PASID, VFIO_DEVICE_ATTACH_PASID, VFIO_DEVICE_DETACH_PASID, iommu_destroy, iommu_hwpt_alloc, vfio_device_attach_iommufd_pt, vfio_device_detach_iommufd_pt } from '../../src/uapi/iommufd.ts';
import { encodeStruct, StructView } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_IOMMUFD_PT } from '../../src/uapi/vfio.ts';

const KINDS = ['virt-smmuv3', 'q35-vtd'] as const;
const DEVICES = [
  ['0000:00:01.0', 0],
  ['0000:00:02.0', 1],
  ['0000:00:03.0', 2],
] as const;

for (const kind of KINDS) {
  t.test(`${kind}: bind, map, attach; device DMA reaches the mapped memory, unmap faults it, close releases everything`, async (t) => {
    const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
    const p = m.host.spawn({ memlockLimit: 2 ** 30 });
    const va = p.mmap(16 * PAGE, { populate: true });
    p.memWrite(va, new TextEncoder().encode('from the process'));
    const baseline = m.host.allocator.pagesInUse;
    const fd = p.open('/dev/iommu');
    t.ok(fd >= 0);
    const ioas = ioasAlloc(p, fd);
    t.equal(map(p, fd, ioas, va, 16 * PAGE, 0x40_0000)[0], 0);
    t.equal(p.mm.pinnedVm, 0, 'nothing pinned before a domain exists');
    const cdevs: number[] = [];
    for (const [bdf, minor] of DEVICES) {
      const dev = m.device(bdf);
      const [cdev, devId] = bind(p, fd, minor);
      cdevs.push(cdev);
      t.ok(devId > 0, `${bdf} bound`);
      const [r, hwpt] = attach(p, cdev, ioas);
      t.equal(r, 0, `${bdf} attached`);
      t.not(hwpt, ioas, 'pt_id is the HWPT');
      dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
      const rd = dev.dmaRead(0x40_0000n, 16);
      t.equal(rd.ok && new TextDecoder().decode(rd.data), 'from the process', `${bdf} reads through the IOMMU`);
      t.ok(dev.dmaWrite(0x40_0000n + 5n * BigInt(PAGE), new Uint8Array([0xa5, 0x5a])).ok, `${bdf} writes`);
      t.same(p.memRead(va + 5n * BigInt(PAGE), 2), new Uint8Array([0xa5, 0x5a]), 'the process sees the write');
      t.equal(dev.dmaRead(0x80_0000n, 4).ok, false, 'an unmapped IOVA faults');
      if (minor === 2) {
        // Detach explicitly on the last one; the others are released by close.
        const d = encodeStruct(vfio_device_detach_iommufd_pt, { argsz: vfio_device_detach_iommufd_pt.size });
        t.equal(p.ioctl(cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, d), 0, 'detach');
        t.equal(dev.dmaRead(0x40_0000n, 4).ok, false, 'a detached device is blocked');
        t.equal(attach(p, cdev, ioas)[0], 0, 'reattach');
        t.ok(dev.dmaRead(0x40_0000n, 4).ok);
      }
    }
    t.equal(p.mm.pinnedVm, 16, 'pinned once for every domain');
    t.equal(p.user.lockedVm, 16, 'charged once, to the uid (user mode)');
    t.same(unmap(p, fd, ioas, 0x40_0000, 16 * PAGE), [0, BigInt(16 * PAGE)]);
    for (const [bdf] of DEVICES) t.equal(m.device(bdf).dmaRead(0x40_0000n, 4).ok, false, `${bdf}: unmapped IOVA faults (no stale IOTLB/ATC entry)`);
    t.equal(p.mm.pinnedVm, 0, 'unpinned by the unmap');
    t.equal(map(p, fd, ioas, va, 16 * PAGE, 0x40_0000)[0], 0, 'map again while attached');
    t.equal(p.mm.pinnedVm, 16);
    t.ok(m.device('0000:00:01.0').dmaRead(0x40_0000n, 4).ok);
    t.equal(p.close(fd), 0);
    t.equal(p.mm.pinnedVm, 16, 'bound devices keep the context alive');
    for (const c of cdevs) t.equal(p.close(c), 0);
    t.equal(p.mm.pinnedVm, 0, 'pinned counter back to zero');
    t.equal(p.user.lockedVm, 0, 'locked counter back to zero');
    t.equal(m.host.allocator.pagesInUse, baseline, 'every page (domain tables, pins) returned');
    for (const [bdf] of DEVICES) t.equal(m.device(bdf).dmaRead(0x40_0000n, 4).ok, false, `${bdf} blocked after release`);
  });
}

for (const kind of KINDS) {
  t.test(`${kind}: a PASID of the DMA engine attaches to a PASID-compatible HWPT (never to an IOAS: its automatic HWPT has flags 0) and detaches; the RID stays as it was`, async (t) => {
    const m = createMachine(kind, { ramBytes: 256 * 2 ** 20 });
    const dev = m.device('0000:00:01.0');
    const p = m.host.spawn({ memlockLimit: 2 ** 30 });
    const va = p.mmap(4 * PAGE, { populate: true });
    p.memWrite(va, new Uint8Array([4, 3, 2, 1]));
    const baseline = m.host.allocator.pagesInUse;
    const fd = p.open('/dev/iommu');
    const ioas = ioasAlloc(p, fd);
    t.equal(map(p, fd, ioas, va, 4 * PAGE, 0x20_0000)[0], 0);
    const [cdev, devId] = bind(p, fd, 0);
    dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER | COMMAND.MEMORY);
    const hb = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_ALLOC_PASID, dev_id: devId, pt_id: ioas });
    t.equal(p.ioctl(fd, IOMMU_HWPT_ALLOC, hb), 0, 'a PASID-compatible HWPT on the IOAS');
    const hwpt = new StructView(iommu_hwpt_alloc, hb).num('out_hwpt_id');
    const toIoas = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, flags: VFIO_DEVICE_ATTACH_PASID, pt_id: ioas, pasid: 5 });
    t.equal(p.ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, toIoas), -EINVAL, 'not to the IOAS (iommufd_hwpt_pasid_compat)');
    const a = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, flags: VFIO_DEVICE_ATTACH_PASID, pt_id: hwpt, pasid: 5 });
    const short = encodeStruct(vfio_device_attach_iommufd_pt, { argsz: 12, flags: VFIO_DEVICE_ATTACH_PASID, pt_id: hwpt, pasid: 5 });
    t.equal(p.ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, short), -EINVAL, 'argsz must reach pasid');
    t.equal(p.ioctl(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, a), 0, 'PASID 5 attached');
    const rd = dev.dmaRead(0x20_0000n, 4, { pasid: 5 });
    t.same(rd.ok ? [...rd.data!] : rd.fault, [4, 3, 2, 1], 'DMA with PASID 5 translates through the IOAS');
    t.equal(dev.dmaRead(0x20_0000n, 4, { pasid: 6 }).ok, false, 'another PASID does not');
    t.equal(dev.dmaRead(0x20_0000n, 4).ok, false, 'nor the RID (not attached)');
    t.equal(p.mm.pinnedVm, 4);
    const d = encodeStruct(vfio_device_detach_iommufd_pt, { argsz: vfio_device_detach_iommufd_pt.size, flags: VFIO_DEVICE_DETACH_PASID, pasid: 5 });
    t.equal(p.ioctl(cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, d), 0, 'PASID 5 detached');
    t.equal(dev.dmaRead(0x20_0000n, 4, { pasid: 5 }).ok, false, 'PASID 5 faults after detach');
    t.equal(p.mm.pinnedVm, 4, 'the explicit HWPT keeps its pins until destroyed');
    t.equal(p.ioctl(fd, IOMMU_DESTROY, encodeStruct(iommu_destroy, { size: iommu_destroy.size, id: hwpt })), 0);
    t.equal(p.mm.pinnedVm, 0);
    t.equal(p.close(cdev), 0);
    t.equal(p.close(fd), 0);
    t.equal(m.host.allocator.pagesInUse, baseline);
  });
}
