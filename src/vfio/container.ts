import { EINVAL, ENODEV, ENOMEM } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import type { OpenFile } from '../host/vfs.ts';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from '../uapi/vfio.ts';
import { injectedErrno } from './faults.ts';
import type { VfioGroup } from './group-file.ts';
import type { VfioModule } from './module.ts';
import { VfioIommu } from './type1.ts';
import { type1CheckExtension, type1Ioctl } from './type1-ioctl.ts';

/**
 * A VFIO container (drivers/vfio/container.c): created by opening
 * /dev/vfio/vfio, it collects groups and, once one is there, takes an IOMMU
 * backend with VFIO_SET_IOMMU. It lives while its fd or any group holds it;
 * the IOMMU backend lives while groups are attached ("detaching the last
 * group deprivileges a container").
 */
export class VfioContainer {
  /** Newest first, as list_add() keeps them. */
  readonly groups: VfioGroup[] = [];
  iommu: VfioIommu | undefined;

  constructor(readonly mod: VfioModule) {}

  /** vfio_container_ioctl_check_extension(). */
  checkExtension(ext: number): number {
    return type1CheckExtension(this.iommu, ext);
  }

  /** vfio_ioctl_set_iommu(). */
  setIommu(type: number): number {
    if (this.groups.length === 0 || this.iommu !== undefined) return -EINVAL;
    // Only the type1 driver is registered: it claims what its CHECK_EXTENSION reports.
    if (type1CheckExtension(undefined, type) <= 0) return -ENODEV;
    if (type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU) return -EINVAL;
    if (injectedErrno(this.mod.host.platform.faults, 'vfio.iommu_alloc', ENOMEM) < 0) return -ENOMEM;
    const iommu = new VfioIommu(this.mod, type === VFIO_TYPE1v2_IOMMU);
    const done: VfioGroup[] = [];
    for (const g of this.groups) {
      const r = iommu.attachGroup(g);
      if (r < 0) {
        for (const d of done.reverse()) iommu.detachGroup(d.iommuGroup);
        iommu.release();
        return r;
      }
      done.push(g);
    }
    this.iommu = iommu;
    return 0;
  }

  /** vfio_container_attach_group(): claim the group's DMA and attach it to the backend, if one is set. */
  attachGroup(group: VfioGroup): number {
    const core = this.mod.host.iommu;
    const r = core.claimDmaOwner(group.iommuGroup, group);
    if (r < 0) return r;
    if (this.iommu !== undefined) {
      const a = this.iommu.attachGroup(group);
      if (a < 0) {
        core.releaseDmaOwner(group.iommuGroup, group);
        return a;
      }
    }
    this.groups.unshift(group);
    return 0;
  }

  /** vfio_group_detach_container(). */
  detachGroup(group: VfioGroup): void {
    this.iommu?.detachGroup(group.iommuGroup);
    this.mod.host.iommu.releaseDmaOwner(group.iommuGroup, group);
    const i = this.groups.indexOf(group);
    if (i >= 0) this.groups.splice(i, 1);
    if (this.groups.length === 0 && this.iommu !== undefined) {
      this.iommu.release();
      this.iommu = undefined;
    }
  }

  ioctl(request: number, arg: Uint8Array | number, proc: Process): number {
    switch (request) {
      case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
      case VFIO_CHECK_EXTENSION:
        return typeof arg === 'number' ? this.checkExtension(arg) : -EINVAL;
      case VFIO_SET_IOMMU:
        return typeof arg === 'number' ? this.setIommu(arg) : -EINVAL;
      default:
        return this.iommu === undefined ? -EINVAL : type1Ioctl(this.iommu, request, arg, proc);
    }
  }
}

/** An open /dev/vfio/vfio. */
export class ContainerFile implements OpenFile {
  constructor(readonly container: VfioContainer) {}

  ioctl(request: number, arg: Uint8Array | number, proc: Process): number {
    return this.container.ioctl(request, arg, proc);
  }

  /** The fd goes; the container stays while groups hold it. */
  release(): void {}
}

export function openContainer(mod: VfioModule): ContainerFile | number {
  if (injectedErrno(mod.host.platform.faults, 'vfio.container_alloc', ENOMEM) < 0) return -ENOMEM;
  return new ContainerFile(new VfioContainer(mod));
}
