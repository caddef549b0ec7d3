/**
 * Fault-injection points of the VFIO front end (DESIGN.md §7), defined on
 * the machine's injector when the VFIO module loads. Each names one step of the kernel code
 * that can fail with ENOMEM/EFAULT in Linux; an injected failure must unwind
 * cleanly (no pins, no IOMMU entries, no locked-memory accounting left).
 */
export const VFIO_INJECTION_POINTS = {
  'vfio.dma_alloc': 'VFIO_IOMMU_MAP_DMA: allocating the struct vfio_dma fails (ENOMEM)',
  'vfio.pin': 'vfio_pin_pages_remote: pinning a batch of user pages fails (ENOMEM or EFAULT)',
  'vfio.iommu_map': 'vfio_iommu_map: iommu_map of one physically contiguous run fails (ENOMEM)',
  'vfio.bitmap_alloc': 'vfio_dma_bitmap_alloc: a dirty bitmap allocation fails (ENOMEM)',
  'vfio.domain_alloc': 'vfio_iommu_type1_attach_group: allocating the IOMMU domain fails (EIO)',
  'vfio.replay': 'vfio_iommu_replay: mapping an existing DMA range into a new domain fails (ENOMEM)',
  'vfio.sva_bind': 'VFIO_IOMMU_BIND: allocating the struct vfio_mm fails (ENOMEM)',
  'vfio.irq_alloc': 'vfio_msi_enable: allocating MSI/MSI-X vectors fails (ENOSPC)',
  'vfio.container_alloc': 'vfio_fops_open: allocating the struct vfio_container when /dev/vfio/vfio is opened fails (ENOMEM)',
  'vfio.iommu_alloc': 'VFIO_SET_IOMMU: vfio_iommu_type1_open allocating the struct vfio_iommu fails (ENOMEM)',
  'vfio.group_alloc': 'vfio_iommu_type1_attach_group: allocating the struct vfio_iommu_group / vfio_domain fails (ENOMEM)',
  'vfio.device_file': 'vfio_allocate_device_file: allocating the struct vfio_device_file (VFIO_GROUP_GET_DEVICE_FD, or opening the cdev) fails (ENOMEM)',
} as const;

export type VfioInjectionPointName = keyof typeof VFIO_INJECTION_POINTS;
