import type { IotlbGather } from './io-pgtable.ts';
import type { Mm } from '../host/mm.ts';
import type { PciFunction } from '../pci/pci-function.ts';

/**
 * The contract between the IOMMU core and IOMMU drivers (the shape of Linux's
 * struct iommu_ops / iommu_domain_ops). Drivers (SMMUv3, VT-d) implement it by
 * programming their hardware model through MMIO and memory; the core and the
 * front ends above never touch hardware.
 */

export type DomainType = 'blocked' | 'identity' | 'paging' | 'sva' | 'nested';

/** Linux enum iommu_resv_type. */
export type ResvType = 'direct' | 'direct-relaxable' | 'reserved' | 'msi' | 'sw-msi';

export interface ResvRegion {
  start: number;
  length: number;
  type: ResvType;
  prot: number;
}

export interface DomainGeometry {
  /** First and last IOVA the domain can translate (inclusive). */
  apertureStart: number;
  apertureEnd: number;
}

export interface PagingDomainFlags {
  /** IOMMU_HWPT_ALLOC_DIRTY_TRACKING */
  dirtyTracking?: boolean;
  /** IOMMU_HWPT_ALLOC_NEST_PARENT */
  nestParent?: boolean;
  /** Needs PASID-capable placement (IOMMU_HWPT_ALLOC_PASID). */
  pasid?: boolean;
}

/** A domain as the driver implements it. */
export interface DriverDomain {
  readonly type: DomainType;
  /** Page sizes as a list of byte sizes, ascending (paging domains). */
  readonly pgsizes: readonly number[];
  readonly geometry: DomainGeometry;
  /**
   * domain->iopf_handler != NULL, as the driver sees it: the core sets it
   * with IommuDomain.iopfHandler, so a driver can count I/O page fault
   * users when the domain is attached (intel iopf_for_domain_set/remove).
   */
  hasIopfHandler?: boolean;
  /** Attach a whole device (its RID) to this domain. 0 or -errno; on error the old attachment stays. */
  attachDev(dev: PciFunction): number;
  /** Attach one PASID of a device. 0 or -errno. */
  setDevPasid?(dev: PciFunction, pasid: number): number;
  /** Map `pgcount` pages of `pgsize` (a size from `pgsizes`). Returns bytes mapped; sets err on failure. */
  mapPages?(iova: number, pa: number, pgsize: number, pgcount: number, prot: number): { mapped: number; err: number };
  /** Unmap up to `pgcount` pages of `pgsize`; returns bytes unmapped (a larger leaf is removed whole). */
  unmapPages?(iova: number, pgsize: number, pgcount: number, gather: IotlbGather): number;
  iovaToPhys?(iova: number): number;
  /** Invalidate what `gather` covers and wait for it (iotlb_sync), then free parked table pages. */
  iotlbSync?(gather: IotlbGather): void;
  flushIotlbAll?(): void;
  /**
   * iommu_domain_ops.enforce_cache_coherency: make every DMA through this
   * domain snoop CPU caches (VT-d: snoop control; SMMUv3: only if every
   * master is CANWBS), true when it now does. Asked before anything is
   * mapped. Absent: the driver cannot (Linux's NULL op), the same as false.
   */
  enforceCacheCoherency?(): boolean;
  /**
   * SVA domain: its mm is gone (the mmu_notifier release each driver
   * registers: intel_mm_release, arm_smmu_mm_release). Every PASID attached
   * to the domain must stop translating while staying attached, until it is
   * unbound. VT-d: intel_pasid_tear_down_entry with fault_ignore (in 7.3
   * the entry ends all zero: the FPD branch needs a present entry, and P was
   * cleared first); SMMUv3: the CD stays
   * valid with translation disabled. Absent: the core puts the blocked
   * domain on each such PASID instead (the faults are then recorded).
   */
  mmRelease?(): void;
  setDirtyTracking?(enable: boolean): number;
  /**
   * Read and (unless noClear) clear dirty state for [iova, iova+size): calls `mark` for each dirty page.
   * Without `mark` it only clears (Linux's dirty bitmap with no bitmap: iopt_clear_dirty_data on enable).
   */
  readAndClearDirty?(iova: number, size: number, noClear: boolean, mark?: (iova: number, size: number) => void): number;
  /** Nested: invalidate the guest's stage-1 caches from user-supplied vendor entries. */
  cacheInvalidateUser?(type: number, entries: Uint8Array, entrySize: number, count: number): { done: number; err: number };
  /** Statistics a front end and the bench read. */
  readonly stats?: { mapCalls: number; leafWrites: number };
  free(): void;
}

/** One page request of a PRI page request group, as the driver reports it (iommu_fault_page_request). */
export interface PageRequest {
  /** -1 when the request carried no PASID. */
  pasid: number;
  /** PRG index. */
  grpid: number;
  addr: number;
  read: boolean;
  write: boolean;
  exec: boolean;
  priv: boolean;
  /** Last request in the group. */
  last: boolean;
  /** The response must carry the PASID (PRG Response PASID Required). */
  needsPasid: boolean;
  /** Driver's private cookie (e.g. a stall tag), handed back in the response. */
  cookie?: number;
}

/** Linux enum iommu_page_response_code. */
export type PageResponseCode = 'success' | 'invalid' | 'failure';

export interface HwInfo {
  /** IOMMU_HW_INFO_TYPE_* */
  type: number;
  data: Uint8Array;
  /** IOMMU_HW_CAP_* bits. */
  capabilities: number;
}

/** What iommufd tells a vIOMMU about its vDEVICEs (iommufd_viommu_find_dev / iommufd_viommu_get_vdev_id). */
export interface ViommuVdevs {
  /** The device bound to virtual ID `virtId` (e.g. a vSID) in this vIOMMU. */
  findDev(virtId: number): PciFunction | undefined;
  /** The virtual ID of a device in this vIOMMU. */
  virtIdOf(dev: PciFunction): number | undefined;
  /**
   * iommufd_viommu_report_event(): queue a vendor event record (an IOMMU_VEVENTQ_TYPE_*) on the
   * vIOMMU's vEVENTQ of that type; 0, -EOPNOTSUPP when there is none, -ENOMEM when the event was lost.
   */
  reportEvent?(type: number, data: Uint8Array): number;
}

/** A driver's vIOMMU (the driver part of struct iommufd_viommu, its iommufd_viommu_ops). */
export interface DriverViommu {
  /** alloc_domain_nested: a nested domain from the user's vendor data (`flags` without FAULT_ID_VALID). */
  allocDomainNested(dev: PciFunction, flags: number, dataType: number, data: Uint8Array): DriverDomain | number;
  /**
   * cache_invalidate: `count` entries of `entryLen` bytes, copied from the user by `copy` when
   * the driver is ready for them (-EFAULT); `done` is how many were handled.
   */
  cacheInvalidate(type: number, entryLen: number, count: number, copy: () => Uint8Array | number): { done: number; err: number };
  /**
   * get_hw_queue_size(): non-zero when this vIOMMU has a hardware-accelerated queue of the
   * IOMMU_HW_QUEUE_TYPE_* (NVIDIA's Tegra241 CMDQV); absent or 0: none.
   */
  hwQueueSize?(type: number): number;
  free(): void;
}

/** An IOMMU instance's driver (Linux struct iommu_ops + struct iommu_device). */
export interface IommuDriver {
  readonly name: string;
  /** Does this IOMMU translate for this function? */
  handles(dev: PciFunction): boolean;
  /** Per-device setup; 0 or -errno (the device then has no IOMMU). */
  probeDevice(dev: PciFunction): number;
  releaseDevice(dev: PciFunction): void;
  domainAllocPaging(dev: PciFunction, flags: PagingDomainFlags): DriverDomain | number;
  domainAllocSva?(dev: PciFunction, mm: Mm): DriverDomain | number;
  domainAllocNested?(dev: PciFunction, parent: DriverDomain, dataType: number, data: Uint8Array): DriverDomain | number;
  /** get_viommu_size() != 0: can this device's IOMMU back a vIOMMU of this IOMMU_VIOMMU_TYPE_*? */
  viommuSupported?(dev: PciFunction, type: number): boolean;
  /** viommu_init(): a vIOMMU over the nest-parent `parent`; -errno when the parent is not usable. */
  viommuAlloc?(dev: PciFunction, parent: DriverDomain, type: number, vdevs: ViommuVdevs): DriverViommu | number;
  readonly identityDomain?: DriverDomain;
  readonly blockedDomain: DriverDomain;
  getResvRegions(dev: PciFunction): ResvRegion[];
  /**
   * device_iommu_capable(dev, IOMMU_CAP_ENFORCE_CACHE_COHERENCY): a domain
   * of this IOMMU can enforce coherency for this device (VT-d: ECAP.SC;
   * SMMUv3: the device is CANWBS). Absent: false.
   */
  enforceCacheCoherencyCapable?(dev: PciFunction): boolean;
  /** Enable I/O page faults (PRI/stall) for the device; 0 or -errno. */
  enableIopf?(dev: PciFunction): number;
  disableIopf?(dev: PciFunction): void;
  /** Deliver a page group response to the device (PRI_RESP / page group response descriptor). */
  pageResponse(dev: PciFunction, req: PageRequest, code: PageResponseCode): void;
  hwInfo(dev: PciFunction): HwInfo;
  /** Largest PASID the device/IOMMU pair supports + 1 (0: no PASID). */
  maxPasids(dev: PciFunction): number;
}
