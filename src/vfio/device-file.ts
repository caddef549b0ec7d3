import { EINVAL, ENOMEM } from '../uapi/errno.ts';
import { bindIommufdIoctl } from './cdev-bind.ts';
import type { Process } from '../host/process.ts';
import type { DeviceNode, FileMapping, OpenFile } from '../host/vfs.ts';
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_DETACH_IOMMUFD_PT } from '../uapi/vfio.ts';
import { injectedErrno } from './faults.ts';
import type { GroupFile } from './group-file.ts';
import { mmapRegion } from './region-mmap.ts';
import type { VfioPciDevice } from './vfio-pci.ts';

/**
 * A VFIO device file (struct vfio_device_file): from the group
 * (VFIO_GROUP_GET_DEVICE_FD, opened and ready at once) or from the cdev
 * /dev/vfio/devices/vfio<N>, which grants access only after iommufd binds
 * it (VFIO_DEVICE_BIND_IOMMUFD); until then every other ioctl is -EINVAL.
 * Both reach the same vfio-pci device ioctls and regions.
 */
export class VfioDeviceFile implements OpenFile {
  private accessGranted: boolean;
  private closed = false;

  constructor(
    readonly dev: VfioPciDevice,
    readonly kind: 'group' | 'cdev',
    private readonly groupFile?: GroupFile,
  ) {
    this.accessGranted = kind === 'group';
  }

  get granted(): boolean {
    return this.accessGranted;
  }

  /** vfio_device_fops_unl_ioctl: BIND_IOMMUFD on any device file (a group's refuses it), then access must be granted. */
  ioctl(request: number, arg: Uint8Array | number, proc: Process): number {
    const ops = this.dev.mod.cdevOps;
    if (request === VFIO_DEVICE_BIND_IOMMUFD) {
      const r = bindIommufdIoctl(this, ops, arg, proc);
      if (r === 0) {
        this.accessGranted = true;
        // vfio_device_block_group() held from bind until the file is released.
        this.dev.group.cdevOpenCount++;
      }
      return r;
    }
    if (!this.accessGranted) return -EINVAL;
    if (this.kind === 'cdev' && (request === VFIO_DEVICE_ATTACH_IOMMUFD_PT || request === VFIO_DEVICE_DETACH_IOMMUFD_PT) && ops?.ioctl !== undefined) {
      return ops.ioctl(this, request, arg, proc);
    }
    return this.dev.ioctl(request, arg, proc, this.kind === 'cdev');
  }

  pread(length: number, offset: bigint, _proc: Process): Uint8Array | number {
    if (!this.accessGranted) return -EINVAL;
    return this.dev.read(length, offset);
  }

  pwrite(data: Uint8Array, offset: bigint, _proc: Process): number {
    if (!this.accessGranted) return -EINVAL;
    return this.dev.write(data, offset);
  }

  /** vfio_device_fops_mmap(): only with access granted, then the region's own rules. */
  mmap(length: number, offset: bigint, shared: boolean, _proc: Process): FileMapping | number {
    if (!this.accessGranted) return -EINVAL;
    return mmapRegion(this.dev, length, offset, shared);
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.kind === 'group') {
      this.dev.close();
      this.dev.mod.cdevOps?.groupUnbind?.(this);
      this.groupFile?.deviceClosed(this);
      return;
    }
    if (this.accessGranted) {
      this.dev.mod.cdevOps?.unbind?.(this);
      this.dev.close();
      this.dev.group.cdevOpenCount--;
    }
  }
}

/** The cdev node /dev/vfio/devices/vfio<N> of a vfio-pci device. */
export function cdevNode(dev: VfioPciDevice): DeviceNode {
  return {
    open: () => {
      // vfio_device_fops_cdev_open: the group is blocked only when the file binds (vfio_device_block_group).
      if (injectedErrno(dev.mod.host.platform.faults, 'vfio.device_file', ENOMEM, { dev: dev.fn.bdf }) < 0) return -ENOMEM;
      return new VfioDeviceFile(dev, 'cdev');
    },
  };
}
