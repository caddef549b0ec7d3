import { acsFlagsEnabled, REQ_ACS_FLAGS } from '../pci/caps/acs.ts';
import { PCIE, PCIE_REGS, PCIE_TYPE } from '../pci/caps/pcie-regs.ts';
import { CFG, HEADER_TYPE_MULTIFUNCTION } from '../pci/header.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import type { IommuDomain } from './domain.ts';
import type { IommuDriver } from './types.ts';

/** Device/Port Types pci_acs_enabled() names that PCIE_TYPE does not (Linux PCI_EXP_TYPE_LEG_END, PCI_EXP_TYPE_PCIE_BRIDGE). */
const PCIE_TYPE_LEGACY_ENDPOINT = 0x1;
const PCIE_TYPE_PCIE_BRIDGE = 0x8;

/**
 * An IOMMU group (struct iommu_group): the smallest set of devices the IOMMU
 * can isolate from one another. A group attaches to a domain as a whole, and
 * a user (VFIO, iommufd) claims DMA ownership of the whole group before it
 * may attach its own domains.
 */
export class IommuGroup {
  readonly id: number;
  readonly driver: IommuDriver;
  readonly devices: PciFunction[] = [];
  /** The domain every device of the group is attached to now (RID translation). */
  domain: IommuDomain | undefined;
  /** The kernel's own domain for the group, restored when the owner lets go. */
  defaultDomain: IommuDomain | undefined;
  /** Whoever claimed DMA ownership (a VFIO container, an iommufd context), or undefined. */
  owner: object | undefined;
  /** How many times the owner claimed it (iommu_group_claim_dma_owner is per group; device claims count). */
  ownerCount = 0;

  constructor(id: number, driver: IommuDriver) {
    this.id = id;
    this.driver = driver;
  }

  /** A group is viable for user ownership when every device in it is bound to a user-capable driver. */
  get viable(): boolean {
    return this.devices.length > 0;
  }
}

/** PCIe Device/Port Type of a function, or undefined for a conventional PCI function (no PCI Express capability). */
function pcieType(dev: PciFunction): number | undefined {
  const off = dev.caps.findStd(PCIE.CAP_ID);
  return off === undefined ? undefined : PCIE_REGS.get('FLAGS', dev.config.get16(off + PCIE.FLAGS), 'TYPE');
}

function isMultifunction(dev: PciFunction): boolean {
  return (dev.config.get8(CFG.HEADER_TYPE) & HEADER_TYPE_MULTIFUNCTION) !== 0;
}

/**
 * pci_acs_enabled(): does the function isolate its peers with the REQ_ACS_FLAGS
 * controls? Conventional PCI never does; ports need the controls enabled; a
 * multi-function endpoint needs them on each function; a single-function
 * endpoint has no peers to isolate (PCIe Base 6.12.1).
 */
function acsEnabled(dev: PciFunction): boolean {
  const type = pcieType(dev);
  if (type === undefined) return false;
  switch (type) {
    case PCIE_TYPE.UPSTREAM:
    case PCIE_TYPE_PCIE_BRIDGE:
      return false;
    case PCIE_TYPE.DOWNSTREAM:
    case PCIE_TYPE.ROOT_PORT:
      return acsFlagsEnabled(dev.config, dev.caps, REQ_ACS_FLAGS);
    case PCIE_TYPE.ENDPOINT:
    case PCIE_TYPE_LEGACY_ENDPOINT:
    case PCIE_TYPE.RC_ENDPOINT:
      return isMultifunction(dev) ? acsFlagsEnabled(dev.config, dev.caps, REQ_ACS_FLAGS) : true;
    default:
      return true;
  }
}

/** pci_acs_path_enabled(start, NULL): every port from `start` up to the root bus isolates. */
function acsPathEnabled(start: PciFunction): boolean {
  for (let p: PciFunction | undefined = start; p !== undefined; p = p.bus?.upstream) {
    if (!acsEnabled(p)) return false;
  }
  return true;
}

/** The bridge whose alias replaces a function's requester ID nearest to it (pci_for_each_dma_alias), if any. */
function nearestAliasingBridge(dev: PciFunction): PciFunction | undefined {
  for (let b = dev.bus?.upstream; b !== undefined; b = b.bus?.upstream) {
    const type = pcieType(b);
    if (type === PCIE_TYPE.ROOT_PORT || type === PCIE_TYPE.UPSTREAM || type === PCIE_TYPE.DOWNSTREAM) continue;
    return b; // a PCIe-to-PCI(-X) bridge, a PCI-X-to-PCIe bridge or a conventional PCI bridge
  }
  return undefined;
}

/**
 * Which devices the IOMMU cannot isolate from one another, as Linux's
 * pci_device_group() (drivers/iommu/iommu.c) decides, as a key equal for
 * devices of one group:
 * 1. a device whose requests reach the IOMMU under a bridge's alias joins
 *    the group of that bridge (devices behind a PCIe-to-PCI or conventional
 *    PCI bridge share it);
 * 2. going upstream, below the first port that, with everything above it,
 *    does not enforce ACS, the device joins that port's group;
 * 3. functions of one multi-function device without ACS share a group;
 * 4. otherwise the device is alone.
 * Keys of upstream bridges are computed the same way, so a device and the
 * port it joins agree whether or not the port itself was probed.
 */
export function pciDeviceGroupKey(dev: PciFunction): string {
  const alias = nearestAliasingBridge(dev);
  if (alias !== undefined) return pciDeviceGroupKey(alias);
  const up = dev.bus?.upstream;
  if (up !== undefined && !acsPathEnabled(up)) return pciDeviceGroupKey(up);
  const slot = `${dev.busNumber.toString(16).padStart(2, '0')}:${(dev.devfn >> 3).toString(16).padStart(2, '0')}`;
  if (isMultifunction(dev) && !acsEnabled(dev)) return `slot:${slot}`;
  return `fn:${slot}.${dev.devfn & 7}`;
}
