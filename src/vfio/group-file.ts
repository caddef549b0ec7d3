import { EBADF, EBADFD, EBUSY, EINVAL, ENODEV, ENOMEM, ENOTTY } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import type { DeviceNode, OpenFile } from '../host/vfs.ts';
import type { IommuGroup } from '../iommu-core/group.ts';
import {
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  vfio_group_status,
} from '../uapi/vfio.ts';
import { ContainerFile, type VfioContainer } from './container.ts';
import { VfioDeviceFile } from './device-file.ts';
import { injectedErrno } from './faults.ts';
import type { GroupIommufd, VfioModule } from './module.ts';
import type { Type1Group } from './type1.ts';
import { head, UserArg } from './user-arg.ts';
import type { VfioPciDevice } from './vfio-pci.ts';

/** Longest device name GET_DEVICE_FD reads (strndup_user(arg, PAGE_SIZE)). */
const NAME_MAX = 4096;

/**
 * struct vfio_group (drivers/vfio/group.c): the VFIO face of one IOMMU group,
 * /dev/vfio/<id>. It is opened by one file at a time; it joins one container;
 * device fds taken from it hold it (its file is released only when they are
 * closed too) and count as users of its container.
 */
export class VfioGroup implements Type1Group {
  readonly devices: VfioPciDevice[] = [];
  container: VfioContainer | undefined;
  /** The iommufd context set in place of a container (group->iommufd). */
  iommufd: GroupIommufd | undefined;
  /** 1 for the group itself while in a container, plus one per open device fd. */
  containerUsers = 0;
  openedFile: GroupFile | undefined;
  /** Devices of this group opened through their cdev (which keeps the group file closed). */
  cdevOpenCount = 0;

  constructor(
    readonly mod: VfioModule,
    readonly iommuGroup: IommuGroup,
  ) {}

  get owner(): object {
    return this;
  }

  get path(): string {
    return `/dev/vfio/${this.iommuGroup.id}`;
  }

  /** The node registered at /dev/vfio/<id>. */
  node(): DeviceNode {
    return {
      open: () => {
        if (this.devices.length === 0) return -ENODEV;
        if (this.openedFile !== undefined || this.cdevOpenCount > 0) return -EBUSY;
        this.openedFile = new GroupFile(this);
        return this.openedFile;
      },
    };
  }

  detachContainer(): void {
    this.iommufd?.put();
    this.iommufd = undefined;
    const c = this.container;
    if (c === undefined) return;
    c.detachGroup(this);
    this.container = undefined;
    this.containerUsers = 0;
  }
}

/** An open /dev/vfio/<group>. */
export class GroupFile implements OpenFile {
  /** The fd plus every device fd taken from it (which hold the group file). */
  private refs = 1;

  constructor(readonly group: VfioGroup) {}

  ioctl(request: number, arg: Uint8Array | number, proc: Process): number {
    switch (request) {
      case VFIO_GROUP_GET_STATUS:
        return this.getStatus(arg, proc);
      case VFIO_GROUP_SET_CONTAINER:
        return this.setContainer(arg, proc);
      case VFIO_GROUP_UNSET_CONTAINER:
        return this.unsetContainer();
      case VFIO_GROUP_GET_DEVICE_FD:
        return this.getDeviceFd(arg, proc);
      default:
        return -ENOTTY;
    }
  }

  private getStatus(arg: Uint8Array | number, proc: Process): number {
    const u = UserArg.of(arg, proc);
    if (typeof u === 'number') return u;
    const s = head(u, vfio_group_status);
    if (typeof s === 'number') return s;
    if (s.num('argsz') < vfio_group_status.size) return -EINVAL;
    let flags = 0;
    const g = this.group;
    if (g.container !== undefined || g.iommufd !== undefined) flags = VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
    else if (g.iommuGroup.owner === undefined) flags = VFIO_GROUP_FLAGS_VIABLE;
    s.setNum('flags', flags);
    return u.write(0, s.bytes);
  }

  /** VFIO_GROUP_SET_CONTAINER: the arg points to an int fd (get_user; a number is that user address, as for every pointer). */
  private setContainer(arg: Uint8Array | number, proc: Process): number {
    const u = UserArg.of(arg, proc);
    if (typeof u === 'number') return u;
    const b = u.read(0, 4);
    if (typeof b === 'number') return b;
    const fd = new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
    const f = proc.file(fd);
    if (f === undefined) return -EBADF;
    const g = this.group;
    if (g.container !== undefined || g.iommufd !== undefined) return -EINVAL;
    if (!(f instanceof ContainerFile)) {
      // An iommufd: the group's devices will bind to it and attach to its compat IOAS when opened.
      const i = g.mod.cdevOps?.groupSetIommufd?.(f);
      if (typeof i === 'number') return i;
      if (i !== undefined) {
        g.iommufd = i;
        return 0;
      }
      // vfio_group_ioctl_set_container(): "The FD passed is not recognized" is -EBADFD (Linux 6.2+).
      return -EBADFD;
    }
    const r = f.container.attachGroup(g);
    if (r < 0) return r;
    g.container = f.container;
    g.containerUsers = 1;
    return 0;
  }

  private unsetContainer(): number {
    const g = this.group;
    if (g.container === undefined && g.iommufd === undefined) return -EINVAL;
    if (g.container !== undefined && g.containerUsers !== 1) return -EBUSY;
    g.detachContainer();
    return 0;
  }

  /** VFIO_GROUP_GET_DEVICE_FD: a device of the group by name (its BDF). */
  private getDeviceFd(arg: Uint8Array | number, proc: Process): number {
    const u = UserArg.of(arg, proc);
    if (typeof u === 'number') return u;
    const name = u.readString(NAME_MAX);
    if (typeof name === 'number') return name;
    const g = this.group;
    const dev = g.devices.find((d) => d.fn.bdf === name);
    if (dev === undefined) return -ENODEV;
    // vfio_df_group_open + vfio_group_use_container: a container with an IOMMU set, or an iommufd.
    if (g.iommufd === undefined && (g.container === undefined || g.container.iommu === undefined)) return -EINVAL;
    if (injectedErrno(this.group.mod.host.platform.faults, 'vfio.device_file', ENOMEM, { dev: dev.fn.bdf }) < 0) return -ENOMEM;
    const file = new VfioDeviceFile(dev, 'group', this);
    const r = dev.open();
    if (r < 0) return r;
    if (g.iommufd !== undefined) {
      // The first open binds the device to the iommufd and attaches it to the compat IOAS.
      const b = g.mod.cdevOps?.groupBind?.(file, g.iommufd) ?? -ENODEV;
      if (b < 0) {
        dev.close();
        return b;
      }
    }
    const fd = proc.installFile(file);
    if (fd < 0) {
      dev.close();
      g.mod.cdevOps?.groupUnbind?.(file);
      return fd;
    }
    if (g.container !== undefined) {
      g.containerUsers++;
      this.containerUsersOf.add(file);
    }
    this.refs++;
    return fd;
  }

  /** Device files that count as users of the container (not those opened with an iommufd set). */
  private readonly containerUsersOf = new WeakSet<VfioDeviceFile>();

  /** A device fd from this group closed (vfio_group_unuse_container + fput of the group file). */
  deviceClosed(file?: VfioDeviceFile): void {
    if (file === undefined || this.containerUsersOf.delete(file)) this.group.containerUsers--;
    this.release();
  }

  /** The last reference goes: leave the container, free the group for the next opener. */
  release(): void {
    if (--this.refs > 0) return;
    const g = this.group;
    g.detachContainer();
    if (g.openedFile === this) g.openedFile = undefined;
  }
}
