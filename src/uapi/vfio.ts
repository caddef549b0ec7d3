/**
 * VFIO uapi: request numbers, flags, capability IDs and struct layouts of
 * include/uapi/linux/vfio.h (and the SVA bind proposal, "vfio: Add support
 * for Shared Virtual Addressing", which numbers VFIO_IOMMU_BIND/UNBIND
 * VFIO_BASE + 22/23). Every struct is declared once, here, as data.
 */
import { IO } from './ioctl.ts';
import { defineStruct } from './struct.ts';

export const VFIO_API_VERSION = 0;

// --- Extensions (VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU arguments) ---------------
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
/** __VFIO_RESERVED_TYPE1_NESTING_IOMMU in today's header (nesting moved to iommufd). */
export const VFIO_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

// --- Request numbers: _IO(';', 100 + n) -------------------------------------------
export const VFIO_TYPE = ';';
export const VFIO_BASE = 100;
const vfioIo = (n: number): number => IO(VFIO_TYPE, VFIO_BASE + n);

export const VFIO_GET_API_VERSION = vfioIo(0);
export const VFIO_CHECK_EXTENSION = vfioIo(1);
export const VFIO_SET_IOMMU = vfioIo(2);
export const VFIO_GROUP_GET_STATUS = vfioIo(3);
export const VFIO_GROUP_SET_CONTAINER = vfioIo(4);
export const VFIO_GROUP_UNSET_CONTAINER = vfioIo(5);
export const VFIO_GROUP_GET_DEVICE_FD = vfioIo(6);
export const VFIO_DEVICE_GET_INFO = vfioIo(7);
export const VFIO_DEVICE_GET_REGION_INFO = vfioIo(8);
export const VFIO_DEVICE_GET_IRQ_INFO = vfioIo(9);
export const VFIO_DEVICE_SET_IRQS = vfioIo(10);
export const VFIO_DEVICE_RESET = vfioIo(11);
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = vfioIo(12);
export const VFIO_DEVICE_PCI_HOT_RESET = vfioIo(13);
export const VFIO_IOMMU_GET_INFO = vfioIo(12);
export const VFIO_IOMMU_MAP_DMA = vfioIo(13);
export const VFIO_IOMMU_UNMAP_DMA = vfioIo(14);
export const VFIO_IOMMU_ENABLE = vfioIo(15);
export const VFIO_IOMMU_DISABLE = vfioIo(16);
export const VFIO_IOMMU_DIRTY_PAGES = vfioIo(17);
export const VFIO_DEVICE_FEATURE = vfioIo(17);
export const VFIO_DEVICE_BIND_IOMMUFD = vfioIo(18);
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = vfioIo(19);
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = vfioIo(20);
/** SVA proposal (Brucker, 2018): bind a process address space to the container's devices. */
export const VFIO_IOMMU_BIND = vfioIo(22);
export const VFIO_IOMMU_UNBIND = vfioIo(23);

// --- Capability chain -------------------------------------------------------------------
/** struct vfio_info_cap_header (vfio.h): the head of every INFO capability. */
export const vfio_info_cap_header = defineStruct('vfio_info_cap_header', [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
]);

// --- Group -----------------------------------------------------------------------------
/** struct vfio_group_status (vfio.h). */
export const vfio_group_status = defineStruct('vfio_group_status', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
]);
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

// --- Device ----------------------------------------------------------------------------
/** struct vfio_device_info (vfio.h). */
export const vfio_device_info = defineStruct('vfio_device_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['num_regions', 'u32'],
  ['num_irqs', 'u32'],
  ['cap_offset', 'u32'],
  ['pad', 'u32'],
]);
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
export const VFIO_DEVICE_FLAGS_CDX = 1 << 8;

/** struct vfio_region_info (vfio.h). */
export const vfio_region_info = defineStruct('vfio_region_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['index', 'u32'],
  ['cap_offset', 'u32'],
  ['size', 'u64'],
  ['offset', 'u64'],
]);
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
export const VFIO_REGION_INFO_CAP_TYPE = 2;
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;

/** struct vfio_region_info_cap_sparse_mmap (vfio.h), header flattened; areas[] follow. */
export const vfio_region_info_cap_sparse_mmap = defineStruct('vfio_region_info_cap_sparse_mmap', [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
  ['nr_areas', 'u32'],
  ['reserved', 'u32'],
]);
/** struct vfio_region_sparse_mmap_area (vfio.h). */
export const vfio_region_sparse_mmap_area = defineStruct('vfio_region_sparse_mmap_area', [
  ['offset', 'u64'],
  ['size', 'u64'],
]);

/** struct vfio_irq_info (vfio.h). */
export const vfio_irq_info = defineStruct('vfio_irq_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['index', 'u32'],
  ['count', 'u32'],
]);
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

/** struct vfio_irq_set (vfio.h); u8 data[] follows the 20-byte header. */
export const vfio_irq_set = defineStruct('vfio_irq_set', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['index', 'u32'],
  ['start', 'u32'],
  ['count', 'u32'],
]);
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
export const VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
export const VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

// vfio-pci region and IRQ indexes (vfio.h enums).
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_BAR1_REGION_INDEX = 1;
export const VFIO_PCI_BAR2_REGION_INDEX = 2;
export const VFIO_PCI_BAR3_REGION_INDEX = 3;
export const VFIO_PCI_BAR4_REGION_INDEX = 4;
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_VGA_REGION_INDEX = 8;
export const VFIO_PCI_NUM_REGIONS = 9;
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
export const VFIO_PCI_NUM_IRQS = 5;
/** vfio-pci places region N at file offset N << 40 (VFIO_PCI_OFFSET_SHIFT, vfio_pci_core.h). */
export const VFIO_PCI_OFFSET_SHIFT = 40n;
export const vfioPciIndexToOffset = (index: number): bigint => BigInt(index) << VFIO_PCI_OFFSET_SHIFT;

/** struct vfio_pci_dependent_device (vfio.h): group_id, or devid with iommufd (VFIO_PCI_HOT_RESET_FLAG_DEV_ID). */
export const vfio_pci_dependent_device = defineStruct('vfio_pci_dependent_device', [
  ['group_id', 'u32'],
  ['segment', 'u16'],
  ['bus', 'u8'],
  ['devfn', 'u8'],
]);
export const VFIO_PCI_DEVID_OWNED = 0;
export const VFIO_PCI_DEVID_NOT_OWNED = -1;
/** struct vfio_pci_hot_reset_info (vfio.h); struct vfio_pci_dependent_device devices[] follow. */
export const vfio_pci_hot_reset_info = defineStruct('vfio_pci_hot_reset_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['count', 'u32'],
]);
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1 << 0;
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1;
/** struct vfio_pci_hot_reset (vfio.h); __s32 group_fds[] follow. */
export const vfio_pci_hot_reset = defineStruct('vfio_pci_hot_reset', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['count', 'u32'],
]);

/** struct vfio_device_feature (vfio.h); u8 data[] follows. VFIO_DEVICE_FEATURE, the feature index in flags[15:0]. */
export const vfio_device_feature = defineStruct('vfio_device_feature', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
]);
export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;

// --- Type1 IOMMU -------------------------------------------------------------------------
/** struct vfio_iommu_type1_info (vfio.h). */
export const vfio_iommu_type1_info = defineStruct('vfio_iommu_type1_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iova_pgsizes', 'u64'],
  ['cap_offset', 'u32'],
  ['pad', 'u32'],
]);
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

/** struct vfio_iommu_type1_info_cap_iova_range (vfio.h), header flattened; vfio_iova_range[] follow. */
export const vfio_iommu_type1_info_cap_iova_range = defineStruct('vfio_iommu_type1_info_cap_iova_range', [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
  ['nr_iovas', 'u32'],
  ['reserved', 'u32'],
]);
/** struct vfio_iova_range (vfio.h): an inclusive range. */
export const vfio_iova_range = defineStruct('vfio_iova_range', [
  ['start', 'u64'],
  ['end', 'u64'],
]);
/** struct vfio_iommu_type1_info_cap_migration (vfio.h), header flattened. */
export const vfio_iommu_type1_info_cap_migration = defineStruct('vfio_iommu_type1_info_cap_migration', [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
  ['flags', 'u32'],
  ['pgsize_bitmap', 'u64'],
  ['max_dirty_bitmap_size', 'u64'],
]);
/** struct vfio_iommu_type1_info_dma_avail (vfio.h), header flattened. */
export const vfio_iommu_type1_info_dma_avail = defineStruct('vfio_iommu_type1_info_dma_avail', [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
  ['avail', 'u32'],
]);

/** struct vfio_iommu_type1_dma_map (vfio.h). */
export const vfio_iommu_type1_dma_map = defineStruct('vfio_iommu_type1_dma_map', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['vaddr', 'u64'],
  ['iova', 'u64'],
  ['size', 'u64'],
]);
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;

/** struct vfio_iommu_type1_dma_unmap (vfio.h); u8 data[] (a struct vfio_bitmap) may follow. */
export const vfio_iommu_type1_dma_unmap = defineStruct('vfio_iommu_type1_dma_unmap', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iova', 'u64'],
  ['size', 'u64'],
]);
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

/** struct vfio_bitmap (vfio.h): `data` is a user pointer to u64 words, one bit per page. */
export const vfio_bitmap = defineStruct('vfio_bitmap', [
  ['pgsize', 'u64'],
  ['size', 'u64'],
  ['data', 'u64'],
]);

/** struct vfio_iommu_type1_dirty_bitmap (vfio.h); u8 data[] follows. */
export const vfio_iommu_type1_dirty_bitmap = defineStruct('vfio_iommu_type1_dirty_bitmap', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
]);
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2;

/** struct vfio_iommu_type1_dirty_bitmap_get (vfio.h), struct vfio_bitmap flattened. */
export const vfio_iommu_type1_dirty_bitmap_get = defineStruct('vfio_iommu_type1_dirty_bitmap_get', [
  ['iova', 'u64'],
  ['size', 'u64'],
  ['bitmap_pgsize', 'u64'],
  ['bitmap_size', 'u64'],
  ['bitmap_data', 'u64'],
]);

// --- SVA bind proposal -----------------------------------------------------------------------
/** struct vfio_iommu_type1_bind (SVA proposal): header of VFIO_IOMMU_BIND/UNBIND; data[] follows. */
export const vfio_iommu_type1_bind = defineStruct('vfio_iommu_type1_bind', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
]);
export const VFIO_IOMMU_BIND_PROCESS = 1 << 0;
/** struct vfio_iommu_type1_bind_process (SVA proposal). */
export const vfio_iommu_type1_bind_process = defineStruct('vfio_iommu_type1_bind_process', [
  ['flags', 'u32'],
  ['pasid', 'u32'],
  ['pid', 's32'],
]);
export const VFIO_IOMMU_BIND_PID = 1 << 0;

/** Dirty bitmap limits of vfio_iommu_type1.c: INT_MAX pages, their bytes rounded to u64 words. */
export const DIRTY_BITMAP_PAGES_MAX = 0x7fff_ffff;
export const DIRTY_BITMAP_SIZE_MAX = Math.ceil(DIRTY_BITMAP_PAGES_MAX / 64) * 8;
/** vfio_iommu_type1.c's dma_entry_limit module parameter default (U16_MAX). */
export const VFIO_DMA_ENTRY_LIMIT_DEFAULT = 0xffff;
