/** PCI/PCIe capability models; each lays out its registers in a ConfigSpace through a CapabilityList. */
export * from './msi.ts';
export * from './msix.ts';
export * from './pcie.ts';
export * from './ats.ts';
export * from './pri.ts';
export * from './pasid.ts';
export * from './acs.ts';
/** FIELD_GET / FIELD_PREP over a field of a register table (src/hw/layout.ts). */
export { fieldGet, fieldPrep } from '../../hw/layout.ts';
