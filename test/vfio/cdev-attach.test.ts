/**
 * What 7.3's VFIO remembers of cdev attachments (drivers/vfio/iommufd.c:
 * vdev->iommufd_attached, vdev->pasids) and the header checks of the device
 * ioctls around it, found by difftest against the rig:
 * - ATTACH with VFIO_DEVICE_ATTACH_PASID and PASID 0 (IOMMU_NO_PASID)
 *   attaches the RID through the PASID path; a plain ATTACH then is an
 *   iommufd_device_attach of an attached device (-EBUSY), a plain DETACH
 *   undoes nothing, DETACH with PASID 0 undoes it;
 * - VFIO_DEVICE_BIND_IOMMUFD on a group's device fd is -EINVAL;
 * - hot reset (info) and VFIO_DEVICE_FEATURE check their header before
 *   anything else (-EINVAL).
 */
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { EBUSY, EINVAL, ENODEV, ENOTTY } from '../../src/uapi/errno.ts';
import { IommufdFile } from '../../src/iommufd/main.ts';
import { IommufdDevice } from '../../src/iommufd/objects.ts';
import { VFIO_DEVICE_ATTACH_PASID, VFIO_DEVICE_DETACH_PASID, vfio_device_attach_iommufd_pt, vfio_device_bind_iommufd, vfio_device_detach_iommufd_pt } from '../../src/uapi/iommufd.ts';
import { encodeStruct } from '../../src/uapi/struct.ts';
import {
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from '../../src/uapi/vfio.ts';
import { ioasAlloc } from '../iommufd/fixture.ts';

const BDF = '0000:00:03.0';
const u32s = (...v: number[]) => new Uint8Array(new Uint32Array(v).buffer);

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: ATTACH with PASID 0 is the RID through the PASID path; plain ATTACH then is -EBUSY, plain DETACH does nothing`, async (t) => {
    const m = createMachine(kind);
    const p = m.host.spawn();
    const fd = p.open('/dev/iommu');
    const vfioDev = p.readdir(`/sys/bus/pci/devices/${BDF}/vfio-dev`) as string[];
    const cd = p.open(`/dev/vfio/devices/${vfioDev[0]}`);
    t.equal(p.ioctl(cd, VFIO_DEVICE_BIND_IOMMUFD, encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: fd })), 0);
    const a = ioasAlloc(p, fd);
    const b = ioasAlloc(p, fd);
    const dev = [...(p.file(fd) as IommufdFile).ctx.objects.values()].find((o): o is IommufdDevice => o instanceof IommufdDevice)!;
    const attach = (pt: number, flags = 0) => p.ioctl(cd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, encodeStruct(vfio_device_attach_iommufd_pt, { argsz: vfio_device_attach_iommufd_pt.size, flags, pt_id: pt, pasid: 0 }));
    const detach = (flags = 0) => p.ioctl(cd, VFIO_DEVICE_DETACH_IOMMUFD_PT, encodeStruct(vfio_device_detach_iommufd_pt, { argsz: vfio_device_detach_iommufd_pt.size, flags, pasid: 0 }));
    t.equal(attach(a, VFIO_DEVICE_ATTACH_PASID), 0, 'PASID 0 attaches (IOMMU_NO_PASID)');
    t.equal(dev.attached?.ioas.id, a, 'the RID is on IOAS a');
    t.equal(attach(a), -EBUSY, 'a plain ATTACH is iommufd_device_attach of an attached device');
    t.equal(attach(b), -EBUSY);
    t.equal(detach(), 0, 'a plain DETACH: nothing was attached that way');
    t.equal(dev.attached?.ioas.id, a, 'still attached');
    t.equal(attach(b, VFIO_DEVICE_ATTACH_PASID), 0, 'PASID 0 again: a replace');
    t.equal(dev.attached?.ioas.id, b);
    t.equal(detach(VFIO_DEVICE_DETACH_PASID), 0);
    t.equal(dev.attached, undefined, 'DETACH with PASID 0 detached the RID');
    t.equal(attach(a), 0, 'now a plain ATTACH attaches');
    t.equal(attach(b), 0, 'and a second one replaces');
    t.equal(dev.attached?.ioas.id, b);
  });

  t.test(`${kind}: BIND_IOMMUFD on a group's device fd is -EINVAL; hot reset and FEATURE check their header first`, async (t) => {
    const m = createMachine(kind);
    const p = m.host.spawn();
    const link = p.readlink(`/sys/bus/pci/devices/${BDF}/iommu_group`) as string;
    const g = p.open(`/dev/vfio/${link.slice(link.lastIndexOf('/') + 1)}`);
    const c = p.open('/dev/vfio/vfio');
    t.equal(p.ioctl(g, VFIO_GROUP_SET_CONTAINER, u32s(c)), 0);
    t.equal(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
    const d = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(`${BDF}\0`));
    t.ok(d >= 0);
    t.equal(p.ioctl(d, VFIO_DEVICE_BIND_IOMMUFD, encodeStruct(vfio_device_bind_iommufd, { argsz: vfio_device_bind_iommufd.size, iommufd: p.open('/dev/iommu') })), -EINVAL, 'BIND only on a cdev');
    t.equal(p.ioctl(d, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, u32s(8, 0, 0)), -EINVAL, 'info: argsz below count');
    t.equal(p.ioctl(d, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, u32s(12, 0, 0)), -ENODEV, 'then no slot or bus reset');
    t.equal(p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, u32s(8, 0, 0)), -EINVAL, 'reset: argsz below count');
    t.equal(p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, u32s(12, 1, 1)), -EINVAL, 'reset: flags');
    t.equal(p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, u32s(12, 0, 0)), -EINVAL, 'reset: a group-opened device needs group fds');
    t.equal(p.ioctl(d, VFIO_DEVICE_PCI_HOT_RESET, u32s(16, 0, 1, g)), -ENODEV, 'then no slot or bus reset');
    t.equal(p.ioctl(d, VFIO_DEVICE_FEATURE, u32s(4, 0)), -EINVAL, 'feature: argsz below flags');
    t.equal(p.ioctl(d, VFIO_DEVICE_FEATURE, u32s(8, 1 << 20)), -EINVAL, 'feature: an unknown flag');
    t.equal(p.ioctl(d, VFIO_DEVICE_FEATURE, u32s(8, (1 << 16) | (1 << 17))), -EINVAL, 'feature: GET and SET without PROBE');
    t.equal(p.ioctl(d, VFIO_DEVICE_FEATURE, u32s(8, 1 << 18)), -ENOTTY, 'feature 0: none');
  });
}
