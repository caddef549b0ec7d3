import type { InjectionPointTable } from '../fault/injector.ts';

/**
 * Fault-injection points of the VFIO front end (DESIGN.md §7), defined on
 * the machine's injector when the VFIO module loads. Each names one step of the kernel code
 * that can fail with ENOMEM/EFAULT in Linux; an injected failure must unwind
 * cleanly (no pins, no IOMMU entries, no locked-memory accounting left).
 */
export const VFIO_INJECTION_POINTS = {
  'vfio.dma_alloc': { description: 'VFIO_IOMMU_MAP_DMA: allocating the struct vfio_dma fails (ENOMEM)', actions: ['fail'] },
  'vfio.pin': { description: 'vfio_pin_pages_remote: pinning a batch of user pages fails (ENOMEM or EFAULT)', actions: ['fail'] },
  'vfio.iommu_map': { description: 'vfio_iommu_map: iommu_map of one physically contiguous run fails (ENOMEM)', actions: ['fail'] },
  'vfio.bitmap_alloc': { description: 'vfio_dma_bitmap_alloc: a dirty bitmap allocation fails (ENOMEM)', actions: ['fail'] },
  'vfio.domain_alloc': { description: 'vfio_iommu_type1_attach_group: allocating the IOMMU domain fails (EIO)', actions: ['fail'] },
  'vfio.replay': { description: 'vfio_iommu_replay: mapping an existing DMA range into a new domain fails (ENOMEM)', actions: ['fail'] },
  'vfio.sva_bind': { description: 'VFIO_IOMMU_BIND: allocating the struct vfio_mm fails (ENOMEM)', actions: ['fail'] },
  'vfio.irq_alloc': { description: 'vfio_msi_enable: allocating MSI/MSI-X vectors fails (ENOSPC)', actions: ['fail'] },
  'vfio.container_alloc': { description: 'vfio_fops_open: allocating the struct vfio_container when /dev/vfio/vfio is opened fails (ENOMEM)', actions: ['fail'] },
  'vfio.iommu_alloc': { description: 'VFIO_SET_IOMMU: vfio_iommu_type1_open allocating the struct vfio_iommu fails (ENOMEM)', actions: ['fail'] },
  'vfio.group_alloc': { description: 'vfio_iommu_type1_attach_group: allocating the struct vfio_iommu_group / vfio_domain fails (ENOMEM)', actions: ['fail'] },
  'vfio.device_file': { description: 'vfio_allocate_device_file: allocating the struct vfio_device_file (VFIO_GROUP_GET_DEVICE_FD, or opening the cdev) fails (ENOMEM)', actions: ['fail'] },
} as const satisfies InjectionPointTable;

export type VfioInjectionPointName = keyof typeof VFIO_INJECTION_POINTS;
