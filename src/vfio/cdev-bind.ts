import { EBUSY, EFAULT, EINVAL, ENODEV } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import { VFIO_DEVICE_BIND_FLAG_TOKEN, vfio_device_bind_iommufd } from '../uapi/iommufd.ts';
import { StructView } from '../uapi/struct.ts';
import type { VfioDeviceFile } from './device-file.ts';
import type { CdevIommufdOps } from './module.ts';
import { copyStructFromUser, UserArg } from './user-arg.ts';

/** offsetofend(struct vfio_device_bind_iommufd, out_devid) */
const BIND_MINSZ = 16;
/** A VF token is a UUID. */
const UUID_BYTES = 16;

/**
 * VFIO_DEVICE_BIND_IOMMUFD on a cdev file (vfio_df_ioctl_bind_iommufd), in
 * the kernel's order: argsz below out_devid -EINVAL; the 24-byte struct
 * copied with copy_struct_from_user (a longer argsz needs zeros past it,
 * -E2BIG); a negative iommufd or a flag other than VFIO_DEVICE_BIND_FLAG_TOKEN
 * -EINVAL; a group's device file -EINVAL; an open group -EBUSY
 * (vfio_device_block_group); a file already bound -EINVAL; the token (vfio_df_check_token):
 * with the flag, the 16 bytes at token_uuid_ptr are read (-EFAULT) and
 * vfio-pci's match_token_uuid refuses a token for a device that is neither
 * an SR-IOV PF nor a VF (-EINVAL; no emulated device is either); without it
 * the pointer is ignored. Then iommufd binds (the fd, the device open, the
 * iommufd device) and out_devid is copied back.
 */
export function bindIommufdIoctl(file: VfioDeviceFile, ops: CdevIommufdOps | undefined, arg: Uint8Array | number, proc: Process): number {
  const u = UserArg.of(arg, proc);
  if (typeof u === 'number') return u;
  const h = u.read(0, 4);
  if (typeof h === 'number') return h;
  const argsz = new DataView(h.buffer, h.byteOffset, 4).getUint32(0, true);
  if (argsz < BIND_MINSZ) return -EINVAL;
  const buf = copyStructFromUser(u, vfio_device_bind_iommufd.size, argsz);
  if (typeof buf === 'number') return buf;
  const v = new StructView(vfio_device_bind_iommufd, buf);
  const fd = v.num('iommufd');
  const flags = v.num('flags');
  if (fd < 0 || (flags & ~VFIO_DEVICE_BIND_FLAG_TOKEN) !== 0) return -EINVAL;
  // BIND_IOMMUFD only on a cdev file.
  if (file.kind === 'group') return -EINVAL;
  // vfio_device_block_group(): not while the group is open (the group path and the cdev path exclude each other).
  if (file.dev.group.openedFile !== undefined) return -EBUSY;
  // One device file cannot be bound twice.
  if (file.granted) return -EINVAL;
  if ((flags & VFIO_DEVICE_BIND_FLAG_TOKEN) !== 0) {
    if (typeof proc.copyFromUser(v.big('token_uuid_ptr'), UUID_BYTES) === 'number') return -EFAULT;
    return -EINVAL;
  }
  if (ops === undefined) return -ENODEV;
  // vfio_df_open(): only the group path may open a device that is already open.
  const devid = ops.bind(file, fd, proc, () => (file.dev.openCount > 0 ? -EINVAL : file.dev.open()));
  if (devid < 0) return devid;
  v.setNum('out_devid', devid);
  if (u.write(12, buf.subarray(12, 16)) < 0) {
    ops.unbind?.(file);
    file.dev.close();
    return -EFAULT;
  }
  return 0;
}
