/**
 * The intel-iommu-shaped host driver for the VT-d model (scalable mode). See
 * README.md in this folder.
 */
export { VtdDriver, IOAPIC_RANGE_START, IOAPIC_RANGE_END } from './driver.ts';
export { IOMMU_HW_INFO_TYPE_INTEL_VTD, IOMMU_HW_CAP_DIRTY_TRACKING } from '../../../src/uapi/iommufd.ts';
export {
  NestedDomain, IOMMU_HWPT_DATA_VTD_S1, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, IOMMU_VTD_S1_SRE, IOMMU_VTD_S1_EAFE, IOMMU_VTD_S1_WPE, IOMMU_VTD_INV_FLAGS_LEAF,
} from './nested.ts';
export type { VtdFaultRecord } from './events.ts';
export { FsDomain, SsDomain, SvaDomain, StaticDomain, IDENTITY_DID, type VtdDomain } from './domains.ts';
