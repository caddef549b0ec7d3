import { ENODEV } from '../uapi/errno.ts';
import type { Host } from '../host/host.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import { cdevNode } from './device-file.ts';
import { VfioGroup } from './group-file.ts';
import { vfioModule, type VfioOptions } from './module.ts';
import { VfioPciDevice } from './vfio-pci.ts';

/**
 * Bind a PCI function to vfio-pci (vfio_pci_probe + vfio_register_group_dev):
 * the function is brought under its IOMMU if it is not yet, its IOMMU group
 * gets /dev/vfio/<group id> (once per group), the function gets the cdev
 * /dev/vfio/devices/vfio<N>, and sysfs shows the driver and
 * /sys/bus/pci/devices/<bdf>/vfio-dev/vfio<N>. Returns the device or -errno.
 */
export function bindVfioPci(host: Host, fn: PciFunction, opts?: VfioOptions): VfioPciDevice | number {
  const mod = vfioModule(host, opts);
  let iommuGroup = host.iommu.groupOf(fn);
  if (iommuGroup === undefined) {
    const r = host.addPciDevice(fn);
    if (r < 0) return r;
    iommuGroup = host.iommu.groupOf(fn);
    if (iommuGroup === undefined) return -ENODEV;
  }
  const existing = mod.devices.find((d) => d.fn === fn);
  if (existing !== undefined) return existing;
  let group = mod.groups.get(iommuGroup);
  if (group === undefined) {
    group = new VfioGroup(mod, iommuGroup);
    mod.groups.set(iommuGroup, group);
    host.vfs.register(group.path, group.node());
  }
  const dev = new VfioPciDevice(mod, fn, group, mod.allocMinor());
  group.devices.push(dev);
  mod.devices.push(dev);
  host.vfs.register(dev.cdevPath, cdevNode(dev));
  const dir = `/sys/bus/pci/devices/${fn.bdf}`;
  host.vfs.addSysfs(`${dir}/driver`, { kind: 'link', target: () => '../../../bus/pci/drivers/vfio-pci' });
  host.vfs.addSysfs(`${dir}/vfio-dev`, { kind: 'dir', list: () => [`vfio${dev.minor}`] });
  host.vfs.addSysfs(`${dir}/vfio-dev/vfio${dev.minor}`, { kind: 'dir', list: () => ['dev'] });
  host.vfs.addSysfs(`${dir}/vfio-dev/vfio${dev.minor}/dev`, { kind: 'file', read: () => `${VFIO_CDEV_MAJOR}:${dev.minor}\n` });
  return dev;
}

/** The char major the vfio-dev class gets (dynamic in Linux; fixed here for determinism). */
export const VFIO_CDEV_MAJOR = 511;
