import type { PciFunction } from '../../../src/pci/pci-function.ts';
import type { VtdDomain } from './domains.ts';
import type { DevFeatures } from './pci-features.ts';
import type { PasidTables } from './tables.ts';

/** One endpoint as the driver sees it (Linux struct device_domain_info). */
export interface DevInfo {
  dev: PciFunction;
  /** Source-id: bus:devfn. */
  sid: number;
  features: DevFeatures;
  /** PASID bits usable with this unit (0: no PASID). */
  pasidBits: number;
  /** ATS enabled in the device (and DTE in its context entry). */
  ats: boolean;
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
