import { VFIO_INJECTION_POINTS } from './points.ts';
import type { Host } from '../host/host.ts';
import type { Process } from '../host/process.ts';
import type { OpenFile } from '../host/vfs.ts';
import type { IommuGroup } from '../iommu-core/group.ts';
import type { Counter } from '../trace/counters.ts';
import { VFIO_DMA_ENTRY_LIMIT_DEFAULT } from '../uapi/vfio.ts';
import { openContainer } from './container.ts';
import type { VfioDeviceFile } from './device-file.ts';
import type { VfioGroup } from './group-file.ts';
import type { VfioPciDevice } from './vfio-pci.ts';
import { Attachment } from '../lib/attachment.ts';

export interface VfioOptions {
  /** vfio_iommu_type1's dma_entry_limit module parameter: DMA mappings per container (default 65535). */
  dmaEntryLimit?: number;
  /** vfio_iommu_type1's disable_hugepages: pin and map one page at a time (no runs, 4K IOMMU entries). */
  disableHugepages?: boolean;
  /**
   * Who provides /dev/vfio/vfio: VFIO's own type1 container (CONFIG_VFIO_CONTAINER, the
   * default), or iommufd (CONFIG_IOMMUFD_VFIO_CONTAINER: the node is an iommufd serving
   * the type1 ioctls from its compat IOAS, charging mm->locked_vm as VFIO does).
   */
  container?: 'type1' | 'iommufd';
}

/** An iommufd context a group was set to (VFIO_GROUP_SET_CONTAINER with an iommufd fd), held by the group. */
export interface GroupIommufd {
  /** iommufd_ctx_put(): the group lets it go. */
  put(): void;
}

/**
 * What the cdev path needs from iommufd (VFIO_DEVICE_BIND_IOMMUFD and the
 * ATTACH/DETACH_IOMMUFD_PT ioctls). The iommufd front end registers it with
 * setCdevIommufdOps(); until then a cdev can be opened but not bound, and
 * every other ioctl on it is -EINVAL, as in Linux.
 */
export interface CdevIommufdOps {
  /**
   * VFIO_DEVICE_BIND_IOMMUFD once VFIO has checked its struct (cdev-bind.ts):
   * the iommufd behind `iommufd` (iommufd_ctx_from_fd), then `open` (vfio_df_open),
   * then iommufd_device_bind. The device ID, or -errno with the device closed again.
   */
  bind(file: VfioDeviceFile, iommufd: number, proc: Process, open: () => number): number;
  /** ATTACH/DETACH_IOMMUFD_PT and anything else iommufd owns on the cdev. */
  ioctl?(file: VfioDeviceFile, request: number, arg: Uint8Array | number, proc: Process): number;
  /** The bound file is closing. */
  unbind?(file: VfioDeviceFile): void;
  /**
   * VFIO_GROUP_SET_CONTAINER (vfio_group_ioctl_set_container): undefined when `file` is no
   * iommufd; else its context, held, once it has a compat IOAS (iommufd_vfio_compat_ioas_create), or -errno.
   */
  groupSetIommufd?(file: OpenFile): GroupIommufd | number | undefined;
  /** A device opened through a group set to an iommufd (vfio_df_group_open): the first open binds it and attaches it to the compat IOAS. */
  groupBind?(file: VfioDeviceFile, ictx: GroupIommufd): number;
  /** A device file from such a group closed (after the device's close): the last one unbinds. */
  groupUnbind?(file: VfioDeviceFile): void;
}

/**
 * The VFIO subsystem of one emulated kernel: module parameters, the
 * /dev/vfio/vfio node, one VfioGroup per IOMMU group holding a vfio-pci
 * device, the cdev minor numbers, host MSI data values and counters.
 */
export class VfioModule {
  /** Module parameters, writable at run time as their 0644 sysfs files are; a container reads dma_entry_limit when it opens. */
  dmaEntryLimit: number;
  disableHugepages: boolean;
  readonly containerBackend: 'type1' | 'iommufd';
  readonly groups = new Map<IommuGroup, VfioGroup>();
  readonly devices: VfioPciDevice[] = [];
  cdevOps: CdevIommufdOps | undefined;
  readonly counters: {
    /** iommu_map() calls VFIO made: one per physically contiguous run per domain. */
    mapCalls: Counter;
    unmapCalls: Counter;
    /** Pages VFIO holds pinned now. */
    pinnedPages: Counter;
    /** Eventfds signalled by device interrupts. */
    irqs: Counter;
  };
  private nextMinor = 0;

  constructor(
    readonly host: Host,
    opts: VfioOptions = {},
  ) {
    this.dmaEntryLimit = opts.dmaEntryLimit ?? VFIO_DMA_ENTRY_LIMIT_DEFAULT;
    this.disableHugepages = opts.disableHugepages ?? false;
    this.containerBackend = opts.container ?? 'type1';
    host.platform.faults.define(VFIO_INJECTION_POINTS);
    const c = host.platform.counters;
    this.counters = {
      mapCalls: c.counter('vfio.map_calls'),
      unmapCalls: c.counter('vfio.unmap_calls'),
      pinnedPages: c.counter('vfio.pinned_pages'),
      irqs: c.counter('vfio.irqs'),
    };
    // With the iommufd backend, iommufd registers /dev/vfio/vfio (registerIommufd).
    if (this.containerBackend === 'type1') host.vfs.register('/dev/vfio/vfio', { open: () => openContainer(this) });
  }

  allocMinor(): number {
    return this.nextMinor++;
  }

  /** A naturally aligned block of `n` (a power of two) host MSI data values for a device's vectors: the base, or -1. */
  allocMsiData(n: number): number {
    return this.host.msiData.alloc(n);
  }

  freeMsiData(base: number, n: number): void {
    this.host.msiData.free(base, n);
  }
}

const modules = new Attachment<Host, VfioModule>('vfio module');

/** The VFIO module of a host, loaded (with `opts`) on first use. */
export function vfioModule(host: Host, opts?: VfioOptions): VfioModule {
  return modules.get(host) ?? modules.set(host, new VfioModule(host, opts));
}

/** Register iommufd's side of the cdev (VFIO_DEVICE_BIND_IOMMUFD). */
export function setCdevIommufdOps(host: Host, ops: CdevIommufdOps | undefined): void {
  vfioModule(host).cdevOps = ops;
}
