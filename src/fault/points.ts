import { SMMUV3_INJECTION_POINTS } from '../../iommu/smmuv3/points.ts';
import { VTD_INJECTION_POINTS } from '../../iommu/vtd/points.ts';
import { DMA_ENGINE_INJECTION_POINTS } from '../../devices/dma-engine/points.ts';
import { VFIO_INJECTION_POINTS } from '../vfio/points.ts';
import { IOMMUFD_INJECTION_POINTS } from '../iommufd/points.ts';

/**
 * Every fault-injection point, named and described in one place (DESIGN.md
 * §7). Names are stable: plans and tests refer to them. Each hardware block
 * lists its own points beside its model; this table gathers them.
 */
export const INJECTION_POINTS = {
  'host.page_alloc': 'the host physical page allocator fails an allocation (ENOMEM)',
  'host.pin':
    'pin_user_pages (VFIO, iommufd): pinning one batch of user pages fails (fail: ENOMEM, or EFAULT with errno EFAULT); the batches already pinned are unpinned',
  ...SMMUV3_INJECTION_POINTS,
  ...VTD_INJECTION_POINTS,
  ...DMA_ENGINE_INJECTION_POINTS,
  ...VFIO_INJECTION_POINTS,
  ...IOMMUFD_INJECTION_POINTS,
} as const;

export type InjectionPointName = keyof typeof INJECTION_POINTS;
