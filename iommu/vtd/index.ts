/**
 * Intel VT-d: the hardware model (`VtdIommu`) and the layouts a driver
 * shares with it (registers, root/context/PASID entries, invalidation
 * descriptors, page request descriptors, fault reasons). See README.md in
 * this folder.
 */
export { VtdIommu, type VtdOptions, type AtsDownstream } from './vtd.ts';
export { PAGE_REQ_DESC, PAGE_REQ_TYPE, PRQ_DESC_BYTES } from './prq.ts';
export * from './regs.ts';
export * from './root-context.ts';
export * from './pasid-entry.ts';
export * from './inv-desc.ts';
export { VTD_FAULT_REASONS, faultName, faultReason, isQualifiedFault, FR, type VtdFaultReason } from './fault-reasons.ts';
export { VTD_INJECTION_POINTS } from './points.ts';
export { IRQ_FIRST, IRQ_END } from './translate.ts';
export { KIND_SS, KIND_FS, KIND_NESTED } from './iotlb.ts';
