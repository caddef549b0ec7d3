/**
 * The VFIO cdev ioctls iommufd serves (drivers/vfio/device_cdev.c:
 * vfio_df_ioctl_bind_iommufd, vfio_df_ioctl_attach_pt, vfio_df_ioctl_detach_pt;
 * drivers/iommu/iommufd/device.c: iommufd_device_change_pt; the PASID width
 * check of iommu_attach_device_pasid), one wrong field at a time, on both
 * real machines: each refused call gets the kernel's errno and changes
 * nothing (objects, attachments, group ownership, pins, fds).
 */
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { E2BIG, EBADF, EBADFD, EFAULT, EINVAL, ENOENT } from '../../src/uapi/errno.ts';
import { IommufdFile } from '../../src/iommufd/main.ts';
import { IommufdDevice } from '../../src/iommufd/objects.ts';
import {
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_PASID,
  iommu_hwpt_alloc,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_DETACH_PASID,
  vfio_device_attach_iommufd_pt,
  vfio_device_bind_iommufd,
  vfio_device_detach_iommufd_pt,
} from '../../src/uapi/iommufd.ts';
import { encodeStruct, type StructDef } from '../../src/uapi/struct.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT } from '../../src/uapi/vfio.ts';
import { ioasAlloc } from './fixture.ts';

const DMA0 = '0000:00:01.0'; // a PASID-capable DMA engine, /dev/vfio/devices/vfio0

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: VFIO cdev BIND/ATTACH/DETACH (and PASID) refusals get the kernel's errno and change nothing`, async (t) => {
    const m = createMachine(kind);
    const p = m.host.spawn({ memlockLimit: 2 ** 26 });
    const fd = p.open('/dev/iommu');
    const ioas = ioasAlloc(p, fd);
    const cdev = p.open('/dev/vfio/devices/vfio0');
    const efd = p.eventfd();
    const ctx = (p.file(fd) as IommufdFile).ctx;
    const fn = m.device(DMA0);
    const maxPasids = m.host.iommu.driverOf(fn)!.maxPasids(fn);
    t.ok(maxPasids > 1, 'the device has a PASID width');
    const snapshot = () => ({
      objects: [...ctx.objects.values()].map((o) => `${o.id}:${o.type}:${o.refs}`).join(' '),
      attached: [...ctx.objects.values()].filter((o): o is IommufdDevice => o instanceof IommufdDevice).map((d) => `${d.attached?.id}/${[...d.pasids.keys()].join(',')}`).join(' '),
      owner: m.host.iommu.groupOf(fn)!.owner === undefined ? 'free' : 'claimed',
      pinned: p.mm.pinnedVm,
      fds: [...Array(64).keys()].filter((i) => p.file(i) !== undefined).length,
    });
    const run = (what: string, req: number, def: StructDef, fields: Record<string, number>, errno: number, argsz = def.size) => {
      const before = snapshot();
      const b = encodeStruct(def, { argsz, ...fields });
      t.equal(p.ioctl(cdev, req, b), errno, what);
      t.same(snapshot(), before, `${what}: nothing changed`);
    };
    const B = VFIO_DEVICE_BIND_IOMMUFD;
    const A = VFIO_DEVICE_ATTACH_IOMMUFD_PT;
    const D = VFIO_DEVICE_DETACH_IOMMUFD_PT;
    const bind = vfio_device_bind_iommufd;
    const att = vfio_device_attach_iommufd_pt;
    const det = vfio_device_detach_iommufd_pt;

    // Before BIND the cdev grants nothing: every other ioctl is -EINVAL (vfio_device_fops_unl_ioctl).
    run('ATTACH before bind', A, att, { pt_id: ioas }, -EINVAL);
    run('DETACH before bind', D, det, {}, -EINVAL);
    run('BIND argsz below out_devid', B, bind, { iommufd: fd }, -EINVAL, 12);
    run('BIND unknown flags', B, bind, { flags: 2, iommufd: fd }, -EINVAL);
    run('BIND negative iommufd', B, bind, { iommufd: -1 }, -EINVAL);
    run('BIND closed fd', B, bind, { iommufd: 60 }, -EBADF);
    run('BIND an eventfd (iommufd_ctx_from_fd: not an iommufd)', B, bind, { iommufd: efd }, -EBADFD);
    // The 24-byte struct of 7.3 (token_uuid_ptr): VFIO_DEVICE_BIND_FLAG_TOKEN reads the token first
    // (vfio_df_check_token), and vfio-pci refuses one for a device that is neither PF nor VF.
    const uuid = p.mmap(4096);
    run('BIND TOKEN with an unreadable token', B, bind, { flags: 1, iommufd: fd, token_uuid_ptr: 0x10 }, -EFAULT);
    run('BIND TOKEN on a device that is no PF or VF (vfio_pci_core_match_token_uuid)', B, bind, { flags: 1, iommufd: fd, token_uuid_ptr: Number(uuid) }, -EINVAL);
    const before = snapshot();
    const big = new Uint8Array(32);
    big.set(encodeStruct(bind, { argsz: 32, iommufd: fd }));
    big[28] = 1;
    t.equal(p.ioctl(cdev, B, big), -E2BIG, 'BIND argsz past the struct with a non-zero byte there (copy_struct_from_user)');
    t.same(snapshot(), before, 'BIND E2BIG: nothing changed');
    t.equal(bind.size, 24, 'struct vfio_device_bind_iommufd is 24 bytes');
    const ok = encodeStruct(bind, { argsz: bind.size, iommufd: fd, token_uuid_ptr: 0x10 });
    t.equal(p.ioctl(cdev, B, ok), 0, 'BIND (without the TOKEN flag the pointer is not read)');
    const devId = new DataView(ok.buffer).getUint32(12, true);
    run('BIND twice (access already granted)', B, bind, { iommufd: fd }, -EINVAL);

    run('ATTACH argsz below pt_id', A, att, { pt_id: ioas }, -EINVAL, 8);
    run('ATTACH unknown flags', A, att, { flags: 2, pt_id: ioas }, -EINVAL);
    run('ATTACH no such object', A, att, { pt_id: 999 }, -ENOENT);
    run('ATTACH pt_id names a device (iommufd_device_change_pt: -EINVAL)', A, att, { pt_id: devId }, -EINVAL);
    run('ATTACH_PASID argsz without the pasid', A, att, { flags: VFIO_DEVICE_ATTACH_PASID, pt_id: ioas, pasid: 1 }, -EINVAL, 12);
    // A PASID needs a HWPT allocated with IOMMU_HWPT_ALLOC_PASID (iommufd_hwpt_pasid_compat).
    const hb = encodeStruct(iommu_hwpt_alloc, { size: iommu_hwpt_alloc.size, flags: IOMMU_HWPT_ALLOC_PASID, dev_id: devId, pt_id: ioas });
    t.equal(p.ioctl(fd, IOMMU_HWPT_ALLOC, hb), 0, 'a PASID-compatible HWPT');
    const compat = new DataView(hb.buffer).getUint32(16, true);
    run('ATTACH_PASID to an IOAS (its automatic HWPT has flags 0)', A, att, { flags: VFIO_DEVICE_ATTACH_PASID, pt_id: ioas, pasid: 1 }, -EINVAL);
    run('ATTACH_PASID beyond the device width (iommu_attach_device_pasid)', A, att, { flags: VFIO_DEVICE_ATTACH_PASID, pt_id: compat, pasid: maxPasids }, -EINVAL);
    run('DETACH argsz below flags', D, det, {}, -EINVAL, 4);
    run('DETACH unknown flags', D, det, { flags: 2 }, -EINVAL);
    run('DETACH_PASID argsz without the pasid', D, det, { flags: VFIO_DEVICE_DETACH_PASID, pasid: 1 }, -EINVAL, 8);

    // The same refusals with the RID attached change nothing either.
    t.equal(p.ioctl(cdev, A, encodeStruct(att, { argsz: att.size, pt_id: ioas })), 0, 'ATTACH to the IOAS');
    run('ATTACH_PASID beside a RID on a HWPT without ALLOC_PASID', A, att, { flags: VFIO_DEVICE_ATTACH_PASID, pt_id: compat, pasid: 1 }, -EINVAL);
    t.equal(p.ioctl(cdev, A, encodeStruct(att, { argsz: att.size, pt_id: compat })), 0, 'the RID onto the PASID-compatible HWPT');
    run('ATTACH again with a wrong-type pt_id', A, att, { pt_id: devId }, -EINVAL);
    run('ATTACH_PASID beyond the width while attached', A, att, { flags: VFIO_DEVICE_ATTACH_PASID, pt_id: compat, pasid: maxPasids }, -EINVAL);
    t.equal(p.ioctl(cdev, A, encodeStruct(att, { argsz: att.size, flags: VFIO_DEVICE_ATTACH_PASID, pt_id: compat, pasid: maxPasids - 1 })), 0, 'the last PASID of the width attaches');
  });
}
