/**
 * Page-table formats: walkers for the hardware models (SMMUv3, VT-d) and
 * builders for the host (io-pgtable style). See README.md in this folder.
 */
export * from './types.ts';
export * from '../../src/iommu-core/io-pgtable.ts';
export { NestedTableTranslator } from './nested.ts';
export { RadixBuilder, type RadixLevel, type EntryCodec } from './radix-builder.ts';
export * from './vmsa-layout.ts';
export { VmsaWalker, vmsaConfigError, type VmsaWalkConfig } from './vmsa-walker.ts';
export { VmsaBuilder, createVmsaBuilder, type VmsaBuilderConfig, MAIR_IDX_NC, MAIR_IDX_CACHE, MAIR_IDX_DEV, S2_MEMATTR_OIWB, S2_MEMATTR_NC, S2_MEMATTR_DEV } from './vmsa-builder.ts';
export * from './ia32e-layout.ts';
export { Ia32eWalker, type Ia32eWalkConfig } from './ia32e-walker.ts';
export { Ia32eBuilder, createIa32eBuilder, type Ia32eBuilderConfig } from './ia32e-builder.ts';
export * from './vtd-ss-layout.ts';
export { VtdSsWalker, type VtdSsWalkConfig } from './vtd-ss-walker.ts';
export { VtdSsBuilder, createVtdSsBuilder, type VtdSsBuilderConfig } from './vtd-ss-builder.ts';
