import { EBUSY, EINVAL, ENODEV, EOPNOTSUPP, EPERM } from '../uapi/errno.ts';
import type { Mm } from '../host/mm.ts';
import type { PciFunction } from '../pci/pci-function.ts';
import { IommuDomain } from './domain.ts';
import { IommuGroup, pciDeviceGroupKey } from './group.ts';
import type { DriverDomain, IommuDriver, PagingDomainFlags, ResvRegion } from './types.ts';

interface DeviceState {
  driver: IommuDriver;
  group: IommuGroup;
  /** PASID -> domain attached to it. */
  pasids: Map<number, IommuDomain>;
}

/**
 * The IOMMU core (Linux drivers/iommu/iommu.c): finds each device's IOMMU,
 * puts devices into groups from the topology, owns the domain objects, and
 * enforces the attach rules: a group attaches as a whole, a user must claim
 * DMA ownership first, only one user domain at a time, PASID attachments
 * only on devices that are alone in their group.
 */
export class IommuCore {
  readonly groups: IommuGroup[] = [];
  private readonly drivers: IommuDriver[] = [];
  private readonly devices = new Map<PciFunction, DeviceState>();
  private readonly groupByKey = new Map<string, IommuGroup>();
  private readonly staticDomains = new Map<DriverDomain, IommuDomain>();

  registerDriver(driver: IommuDriver): void {
    this.drivers.push(driver);
  }

  /** Bring a device under its IOMMU: probe, group, attach the group's default domain. */
  probe(dev: PciFunction): number {
    if (this.devices.has(dev)) return 0;
    const driver = this.drivers.find((d) => d.handles(dev));
    if (driver === undefined) return -ENODEV;
    const r = driver.probeDevice(dev);
    if (r < 0) return r;
    const key = `${driver.name}/${groupKey(dev)}`;
    let group = this.groupByKey.get(key);
    if (group === undefined) {
      group = new IommuGroup(this.groups.length, driver);
      this.groups.push(group);
      this.groupByKey.set(key, group);
    }
    group.devices.push(dev);
    this.devices.set(dev, { driver, group, pasids: new Map() });
    if (group.defaultDomain === undefined) {
      // The kernel's default domain for a device no kernel driver maps for: an empty paging domain.
      const d = driver.domainAllocPaging(dev, {});
      group.defaultDomain = typeof d === 'number' ? this.wrapStatic(driver.blockedDomain) : new IommuDomain(d);
    }
    const target = group.domain ?? group.defaultDomain;
    const a = target.driver.attachDev(dev);
    if (a < 0) return a;
    if (group.domain === undefined) {
      group.domain = target;
      target.users++;
    }
    return 0;
  }

  groupOf(dev: PciFunction): IommuGroup | undefined {
    return this.devices.get(dev)?.group;
  }

  driverOf(dev: PciFunction): IommuDriver | undefined {
    return this.devices.get(dev)?.driver;
  }

  probedDevices(): PciFunction[] {
    return [...this.devices.keys()];
  }

  private state(dev: PciFunction): DeviceState | undefined {
    return this.devices.get(dev);
  }

  private wrapStatic(d: DriverDomain): IommuDomain {
    let w = this.staticDomains.get(d);
    if (w === undefined) {
      w = new IommuDomain(d);
      this.staticDomains.set(d, w);
    }
    return w;
  }

  blockedDomain(group: IommuGroup): IommuDomain {
    return this.wrapStatic(group.driver.blockedDomain);
  }

  identityDomain(group: IommuGroup): IommuDomain | undefined {
    const d = group.driver.identityDomain;
    return d === undefined ? undefined : this.wrapStatic(d);
  }

  // --- domain allocation ------------------------------------------------------

  allocPaging(dev: PciFunction, flags: PagingDomainFlags = {}): IommuDomain | number {
    const s = this.state(dev);
    if (s === undefined) return -ENODEV;
    const d = s.driver.domainAllocPaging(dev, flags);
    return typeof d === 'number' ? d : new IommuDomain(d);
  }

  /** iommu_sva_domain_alloc(): the domain holds the mm (mmgrab) until it is freed. */
  allocSva(dev: PciFunction, mm: Mm): IommuDomain | number {
    const s = this.state(dev);
    if (s === undefined) return -ENODEV;
    if (s.driver.domainAllocSva === undefined) return -EOPNOTSUPP;
    const d = s.driver.domainAllocSva(dev, mm);
    if (typeof d === 'number') return d;
    mm.grab();
    return new IommuDomain(d, mm);
  }

  /**
   * The mm of an SVA domain was released (process exit): every PASID
   * attached to the domain stops translating but stays attached, so the
   * bonds last until they are unbound. The driver's mmRelease does it;
   * without one, the blocked domain goes on each PASID.
   */
  svaMmReleased(domain: IommuDomain): void {
    if (domain.mmReleased) return;
    domain.mmReleased = true;
    if (domain.driver.mmRelease !== undefined) {
      domain.driver.mmRelease();
      return;
    }
    for (const [dev, s] of this.devices) {
      for (const [pasid, d] of s.pasids) if (d === domain) s.driver.blockedDomain.setDevPasid?.(dev, pasid);
    }
  }

  allocNested(dev: PciFunction, parent: IommuDomain, dataType: number, data: Uint8Array): IommuDomain | number {
    const s = this.state(dev);
    if (s === undefined) return -ENODEV;
    if (s.driver.domainAllocNested === undefined) return -EOPNOTSUPP;
    const d = s.driver.domainAllocNested(dev, parent.driver, dataType, data);
    return typeof d === 'number' ? d : new IommuDomain(d);
  }

  // --- DMA ownership -------------------------------------------------------------

  /**
   * iommu_group_claim_dma_owner(): a user takes the group. Refused while
   * another owner holds it or while the group is not on its default domain;
   * the group is then blocked until the user attaches its own domain.
   */
  claimDmaOwner(group: IommuGroup, owner: object): number {
    if (group.owner !== undefined) {
      if (group.owner !== owner) return -EBUSY;
      group.ownerCount++;
      return 0;
    }
    if (group.domain !== group.defaultDomain) return -EBUSY;
    const r = this.setGroupDomain(group, this.blockedDomain(group));
    if (r < 0) return r;
    group.owner = owner;
    group.ownerCount = 1;
    return 0;
  }

  /** iommu_group_release_dma_owner(): back to the default domain when the last claim goes. */
  releaseDmaOwner(group: IommuGroup, owner: object): void {
    if (group.owner !== owner) return;
    if (--group.ownerCount > 0) return;
    for (const dev of group.devices) {
      const s = this.devices.get(dev)!;
      for (const [pasid, d] of [...s.pasids]) this.detachDevicePasid(d, dev, pasid);
    }
    group.owner = undefined;
    this.setGroupDomain(group, group.defaultDomain!);
  }

  // --- attach -----------------------------------------------------------------------

  /**
   * iommu_attach_group(): only a group's owner may attach, and only while the
   * group sits on its blocking (or default) domain; -EBUSY otherwise.
   */
  attachGroup(domain: IommuDomain, group: IommuGroup, owner: object): number {
    if (group.owner !== owner) return -EPERM;
    if (group.domain !== this.blockedDomain(group) && group.domain !== group.defaultDomain) return -EBUSY;
    return this.setGroupDomain(group, domain);
  }

  /** iommu_group_replace_domain(): swap the owner's domain without passing through blocked. */
  replaceGroupDomain(domain: IommuDomain, group: IommuGroup, owner: object): number {
    if (group.owner !== owner) return -EPERM;
    return this.setGroupDomain(group, domain);
  }

  /** iommu_detach_group(): the owner's domain goes; the group is blocked again. */
  detachGroup(domain: IommuDomain, group: IommuGroup, owner: object): number {
    if (group.owner !== owner || group.domain !== domain) return -EINVAL;
    return this.setGroupDomain(group, this.blockedDomain(group));
  }

  /** Attach every device; if one refuses, put the others back on the old domain. */
  private setGroupDomain(group: IommuGroup, domain: IommuDomain): number {
    const old = group.domain;
    if (old === domain) return 0;
    const done: PciFunction[] = [];
    for (const dev of group.devices) {
      const r = domain.driver.attachDev(dev);
      if (r < 0) {
        if (old !== undefined) for (const d of done) old.driver.attachDev(d);
        return r;
      }
      done.push(dev);
    }
    if (old !== undefined) old.users--;
    domain.users++;
    group.domain = domain;
    return 0;
  }

  // --- PASID --------------------------------------------------------------------------

  /** iommu_attach_device_pasid(). */
  attachDevicePasid(domain: IommuDomain, dev: PciFunction, pasid: number): number {
    const s = this.state(dev);
    if (s === undefined) return -ENODEV;
    if (s.group.devices.length !== 1) return -EINVAL;
    if (!Number.isInteger(pasid) || pasid < 1 || pasid >= s.driver.maxPasids(dev)) return -EINVAL;
    if (domain.driver.setDevPasid === undefined) return -EOPNOTSUPP;
    if (s.pasids.has(pasid)) return -EBUSY;
    const r = domain.driver.setDevPasid(dev, pasid);
    if (r < 0) return r;
    s.pasids.set(pasid, domain);
    domain.users++;
    return 0;
  }

  /** iommu_detach_device_pasid(): the PASID is blocked again. */
  detachDevicePasid(domain: IommuDomain, dev: PciFunction, pasid: number): void {
    const s = this.state(dev);
    if (s === undefined || s.pasids.get(pasid) !== domain) return;
    s.driver.blockedDomain.setDevPasid?.(dev, pasid);
    s.pasids.delete(pasid);
    domain.users--;
  }

  domainForPasid(dev: PciFunction, pasid: number): IommuDomain | undefined {
    const s = this.state(dev);
    if (s === undefined) return undefined;
    return pasid < 0 ? s.group.domain : s.pasids.get(pasid);
  }

  // --- reserved regions ------------------------------------------------------------------

  resvRegions(dev: PciFunction): ResvRegion[] {
    const s = this.state(dev);
    return s === undefined ? [] : s.driver.getResvRegions(dev);
  }

  /** Every reserved region of every device in the group (iommu_get_group_resv_regions). */
  groupResvRegions(group: IommuGroup): ResvRegion[] {
    return group.devices.flatMap((d) => this.resvRegions(d));
  }
}

/** The group a device belongs to, as Linux's pci_device_group decides (group.ts). */
export function groupKey(dev: PciFunction): string {
  return pciDeviceGroupKey(dev);
}
