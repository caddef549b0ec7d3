import type { PciAtsDevice } from '../../../src/host/pci-ats.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';
import type { VtdDomain } from './domains.ts';
import type { PasidTables } from './tables.ts';

/** One endpoint as the driver sees it (Linux struct device_domain_info). */
export interface DevInfo {
  dev: PciFunction;
  /** Source-id: bus:devfn. */
  sid: number;
  /** The device's ATS, PRI and PASID as the PCI core keeps them (drivers/pci/ats.c). */
  pdev: PciAtsDevice;
  /** PASID bits usable with this unit (0: no PASID). */
  pasidBits: number;
  /** ATS enabled in the device (and DTE in its context entry). */
  ats: boolean;
  /** pci_ats_queue_depth(), for device-TLB invalidations (0 without ATS). */
  atsQdep: number;
  /** info->pri_supported: ATS on, the device has PRI, the unit ECAP.PRS and ECAP.PDS; the context entry has PRE. */
  pre: boolean;
  /** info->pri_enabled: PRI enabled in the device at probe (iommu_enable_pci_pri). */
  pri: boolean;
  /**
   * info->iopf_refcount: attachments (RID or PASID) of domains with a fault
   * handler; the device is on the I/O page-fault queue while it is not 0.
   */
  iopfRefcount: number;
  tables: PasidTables;
  /** PASID (0 = RID_PASID, requests without PASID) -> attached domain. */
  attached: Map<number, VtdDomain>;
}

export function userKey(sid: number, pasid: number): string {
  return `${sid}:${pasid}`;
}
