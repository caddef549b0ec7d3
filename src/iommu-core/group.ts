import type { PciFunction } from '../pci/pci-function.ts';
import type { IommuDomain } from './domain.ts';
import type { IommuDriver } from './types.ts';

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
