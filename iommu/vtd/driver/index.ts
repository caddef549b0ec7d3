/**
 * The intel-iommu-shaped host driver for the VT-d model (scalable mode). See
 * README.md in this folder.
 */
export { VtdDriver, IOMMU_HW_INFO_TYPE_INTEL_VTD, IOAPIC_RANGE_START, IOAPIC_RANGE_END } from './driver.ts';
export type { VtdFaultRecord } from './events.ts';
export { FsDomain, SsDomain, SvaDomain, StaticDomain, IDENTITY_DID, type VtdDomain } from './domains.ts';
