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
  /** The context entry has PRE (device has PRI, unit has ECAP.PRS, ATS on). */
  pre: boolean;
  /** PRI enabled in the device (enableIopf). */
  pri: boolean;
  tables: PasidTables;
  /** PASID (0 = RID_PASID, requests without PASID) -> attached domain. */
  attached: Map<number, VtdDomain>;
}

export function userKey(sid: number, pasid: number): string {
  return `${sid}:${pasid}`;
}
