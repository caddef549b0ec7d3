import { DMA_ENGINE_INJECTION_POINTS } from '../devices/dma-engine/points.ts';
import { SMMUV3_INJECTION_POINTS } from '../iommu/smmuv3/points.ts';
import { VTD_INJECTION_POINTS } from '../iommu/vtd/points.ts';
import { HOST_INJECTION_POINTS } from '../src/host/points.ts';
import { IOMMUFD_INJECTION_POINTS } from '../src/iommufd/points.ts';
import { VFIO_INJECTION_POINTS } from '../src/vfio/points.ts';

/**
 * The injection points of every built-in part, in one table: what the tools
 * list and check plans against before a machine exists. A machine's own
 * injector holds only the points its parts defined as they were built
 * (FaultInjector.define), devices from outside the tree included.
 */
export const INJECTION_POINTS = {
  ...HOST_INJECTION_POINTS,
  ...SMMUV3_INJECTION_POINTS,
  ...VTD_INJECTION_POINTS,
  ...DMA_ENGINE_INJECTION_POINTS,
  ...VFIO_INJECTION_POINTS,
  ...IOMMUFD_INJECTION_POINTS,
} as const;

/** The name of a built-in injection point. */
export type InjectionPointName = keyof typeof INJECTION_POINTS;
