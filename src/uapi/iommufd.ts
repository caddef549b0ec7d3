/**
 * iommufd uapi: request numbers, flags and struct layouts of
 * include/uapi/linux/iommufd.h, plus the iommufd-facing structs of
 * include/uapi/linux/vfio.h (vfio_device_bind_iommufd,
 * vfio_device_{attach,detach}_iommufd_pt). Every struct is declared once,
 * here, as data; the comments name the header each layout comes from.
 */
import { IO } from './ioctl.ts';
import { defineStruct } from './struct.ts';

// --- Request numbers: _IO(IOMMUFD_TYPE = ';', IOMMUFD_CMD_BASE = 0x80 + n) (iommufd.h) ---
export const IOMMUFD_TYPE = ';';
export const IOMMUFD_CMD_BASE = 0x80;
const iommufdIo = (n: number): number => IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + n);

export const IOMMU_DESTROY = iommufdIo(0); // 0x3b80
export const IOMMU_IOAS_ALLOC = iommufdIo(1);
export const IOMMU_IOAS_ALLOW_IOVAS = iommufdIo(2);
export const IOMMU_IOAS_COPY = iommufdIo(3);
export const IOMMU_IOAS_IOVA_RANGES = iommufdIo(4);
export const IOMMU_IOAS_MAP = iommufdIo(5);
export const IOMMU_IOAS_UNMAP = iommufdIo(6);
export const IOMMU_OPTION = iommufdIo(7);
export const IOMMU_VFIO_IOAS = iommufdIo(8);
export const IOMMU_HWPT_ALLOC = iommufdIo(9);
export const IOMMU_GET_HW_INFO = iommufdIo(10);
export const IOMMU_HWPT_SET_DIRTY_TRACKING = iommufdIo(11);
export const IOMMU_HWPT_GET_DIRTY_BITMAP = iommufdIo(12);
export const IOMMU_HWPT_INVALIDATE = iommufdIo(13);
export const IOMMU_FAULT_QUEUE_ALLOC = iommufdIo(14);
export const IOMMU_IOAS_MAP_FILE = iommufdIo(15);
export const IOMMU_VIOMMU_ALLOC = iommufdIo(16);
export const IOMMU_VDEVICE_ALLOC = iommufdIo(17);
export const IOMMU_IOAS_CHANGE_PROCESS = iommufdIo(18);
export const IOMMU_VEVENTQ_ALLOC = iommufdIo(19);
export const IOMMU_HW_QUEUE_ALLOC = iommufdIo(20);
export const IOMMU_IOAS_NOIOMMU_GET_PA = iommufdIo(21);

// --- Flags and enums (iommufd.h) ---------------------------------------------------
/** enum iommufd_ioas_map_flags */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;
/** enum iommufd_option */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
/** enum iommufd_option_ops */
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;
/** enum iommufd_vfio_ioas_op */
export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;
/** enum iommufd_hwpt_alloc_flags */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;
/** enum iommu_hwpt_data_type */
export const IOMMU_HWPT_DATA_NONE = 0;
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
/** enum iommu_hw_info_type (DEFAULT: with IOMMU_HW_INFO_FLAG_INPUT_TYPE clear, the driver's own type) */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** enum iommufd_hw_info_flags: in_data_type (sharing out_data_type's field) asks for a given type */
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;
/** enum iommufd_hw_capabilities */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1;
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2;
export const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3;
/** enum iommufd_hwpt_set_dirty_tracking_flags */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
/** enum iommufd_hwpt_get_dirty_bitmap_flags */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
/** enum iommu_hwpt_pgfault_flags */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
/** enum iommu_hwpt_pgfault_perm */
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;
/** enum iommufd_page_response_code */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
export const IOMMUFD_PAGE_RESP_INVALID = 1;

// --- Structs (iommufd.h) ----------------------------------------------------------------
/** struct iommu_destroy */
export const iommu_destroy = defineStruct('iommu_destroy', [
  ['size', 'u32'],
  ['id', 'u32'],
]);

/** struct iommu_ioas_alloc */
export const iommu_ioas_alloc = defineStruct('iommu_ioas_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['out_ioas_id', 'u32'],
]);

/** struct iommu_iova_range */
export const iommu_iova_range = defineStruct('iommu_iova_range', [
  ['start', 'u64'],
  ['last', 'u64'],
]);

/** struct iommu_ioas_iova_ranges */
export const iommu_ioas_iova_ranges = defineStruct('iommu_ioas_iova_ranges', [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['num_iovas', 'u32'],
  ['__reserved', 'u32'],
  ['allowed_iovas', 'u64'],
  ['out_iova_alignment', 'u64'],
]);

/** struct iommu_ioas_allow_iovas */
export const iommu_ioas_allow_iovas = defineStruct('iommu_ioas_allow_iovas', [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['num_iovas', 'u32'],
  ['__reserved', 'u32'],
  ['allowed_iovas', 'u64'],
]);

/** struct iommu_ioas_map */
export const iommu_ioas_map = defineStruct('iommu_ioas_map', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['__reserved', 'u32'],
  ['user_va', 'u64'],
  ['length', 'u64'],
  ['iova', 'u64'],
]);

/** struct iommu_ioas_copy */
export const iommu_ioas_copy = defineStruct('iommu_ioas_copy', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dst_ioas_id', 'u32'],
  ['src_ioas_id', 'u32'],
  ['length', 'u64'],
  ['dst_iova', 'u64'],
  ['src_iova', 'u64'],
]);

/** struct iommu_ioas_unmap */
export const iommu_ioas_unmap = defineStruct('iommu_ioas_unmap', [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
]);

/** struct iommu_option */
export const iommu_option = defineStruct('iommu_option', [
  ['size', 'u32'],
  ['option_id', 'u32'],
  ['op', 'u16'],
  ['__reserved', 'u16'],
  ['object_id', 'u32'],
  ['val64', 'u64'],
]);

/** struct iommu_vfio_ioas */
export const iommu_vfio_ioas = defineStruct('iommu_vfio_ioas', [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['op', 'u16'],
  ['__reserved', 'u16'],
]);

/** struct iommu_hwpt_alloc (data_* appended in v6.7, fault_id/__reserved2 in v6.11; the minimum size ends at __reserved) */
export const iommu_hwpt_alloc = defineStruct('iommu_hwpt_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['pt_id', 'u32'],
  ['out_hwpt_id', 'u32'],
  ['__reserved', 'u32'],
  ['data_type', 'u32'],
  ['data_len', 'u32'],
  ['data_uptr', 'u64'],
  ['fault_id', 'u32'],
  ['__reserved2', 'u32'],
]);

/** struct iommu_hw_info (out_max_pasid_log2 carved out of the old __reserved u32) */
export const iommu_hw_info = defineStruct('iommu_hw_info', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['data_len', 'u32'],
  ['data_uptr', 'u64'],
  ['out_data_type', 'u32'],
  ['out_max_pasid_log2', 'u8'],
  ['__reserved', 'u8[3]'],
  ['out_capabilities', 'u64'],
]);

/** struct iommu_hw_info_vtd: IOMMU_GET_HW_INFO's data for IOMMU_HW_INFO_TYPE_INTEL_VTD (the CAP and ECAP registers) */
export const iommu_hw_info_vtd = defineStruct('iommu_hw_info_vtd', [
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['cap_reg', 'u64'],
  ['ecap_reg', 'u64'],
]);
/** enum iommu_hw_info_vtd_flags */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

/** struct iommu_hw_info_arm_smmuv3: IOMMU_GET_HW_INFO's data for IOMMU_HW_INFO_TYPE_ARM_SMMUV3 (IDR0-5, IIDR, AIDR) */
export const iommu_hw_info_arm_smmuv3 = defineStruct('iommu_hw_info_arm_smmuv3', [
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['idr', 'u32[6]'],
  ['iidr', 'u32'],
  ['aidr', 'u32'],
]);
/** enum iommu_hw_info_arm_smmuv3_flags */
export const IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI = 1 << 0;

/** struct iommu_hwpt_set_dirty_tracking */
export const iommu_hwpt_set_dirty_tracking = defineStruct('iommu_hwpt_set_dirty_tracking', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['hwpt_id', 'u32'],
  ['__reserved', 'u32'],
]);

/** struct iommu_hwpt_get_dirty_bitmap */
export const iommu_hwpt_get_dirty_bitmap = defineStruct('iommu_hwpt_get_dirty_bitmap', [
  ['size', 'u32'],
  ['hwpt_id', 'u32'],
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
  ['page_size', 'u64'],
  ['data', 'u64'],
]);

/** struct iommu_hwpt_invalidate */
export const iommu_hwpt_invalidate = defineStruct('iommu_hwpt_invalidate', [
  ['size', 'u32'],
  ['hwpt_id', 'u32'],
  ['data_uptr', 'u64'],
  ['data_type', 'u32'],
  ['entry_len', 'u32'],
  ['entry_num', 'u32'],
  ['__reserved', 'u32'],
]);

/** struct iommu_hwpt_pgfault: one record read() from a fault queue fd */
export const iommu_hwpt_pgfault = defineStruct('iommu_hwpt_pgfault', [
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['pasid', 'u32'],
  ['grpid', 'u32'],
  ['perm', 'u32'],
  ['__reserved', 'u32'],
  ['addr', 'u64'],
  ['length', 'u32'],
  ['cookie', 'u32'],
]);

/** struct iommu_hwpt_page_response: one reply write() to a fault queue fd */
export const iommu_hwpt_page_response = defineStruct('iommu_hwpt_page_response', [
  ['cookie', 'u32'],
  ['code', 'u32'],
]);

/** struct iommu_fault_alloc */
export const iommu_fault_alloc = defineStruct('iommu_fault_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['out_fault_id', 'u32'],
  ['out_fault_fd', 'u32'],
]);

// --- VFIO cdev structs that talk to iommufd (vfio.h) ------------------------------------
/** struct vfio_device_bind_iommufd (minsz ends at out_devid; token_uuid_ptr appended in v6.17) */
export const vfio_device_bind_iommufd = defineStruct('vfio_device_bind_iommufd', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iommufd', 's32'],
  ['out_devid', 'u32'],
  ['token_uuid_ptr', 'u64'],
]);
/** VFIO_DEVICE_BIND_FLAG_TOKEN: token_uuid_ptr points to the 16-byte VF token (VFIO_DEVICE_FEATURE_PCI_VF_TOKEN's format) */
export const VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;

/** struct vfio_device_attach_iommufd_pt (minsz ends at pt_id; pasid read with VFIO_DEVICE_ATTACH_PASID) */
export const vfio_device_attach_iommufd_pt = defineStruct('vfio_device_attach_iommufd_pt', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['pt_id', 'u32'],
  ['pasid', 'u32'],
]);
export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;

/** struct vfio_device_detach_iommufd_pt (minsz ends at flags) */
export const vfio_device_detach_iommufd_pt = defineStruct('vfio_device_detach_iommufd_pt', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['pasid', 'u32'],
]);
export const VFIO_DEVICE_DETACH_PASID = 1 << 0;

// --- vIOMMU, vDEVICE and ARM SMMUv3 nesting (iommufd.h, v6.13+) ------------------------
/** enum iommu_viommu_type */
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** enum iommu_hwpt_invalidate_data_type */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

/** struct iommu_viommu_alloc (data_len/__reserved/data_uptr appended in v6.16; the minimum size ends at out_viommu_id) */
export const iommu_viommu_alloc = defineStruct('iommu_viommu_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['type', 'u32'],
  ['dev_id', 'u32'],
  ['hwpt_id', 'u32'],
  ['out_viommu_id', 'u32'],
  ['data_len', 'u32'],
  ['__reserved', 'u32'],
  ['data_uptr', 'u64'],
]);

/** struct iommu_vdevice_alloc (the minimum size ends at virt_id) */
export const iommu_vdevice_alloc = defineStruct('iommu_vdevice_alloc', [
  ['size', 'u32'],
  ['viommu_id', 'u32'],
  ['dev_id', 'u32'],
  ['out_vdevice_id', 'u32'],
  ['virt_id', 'u64'],
]);

/** struct iommu_hwpt_arm_smmuv3 { __aligned_le64 ste[2]; }: the guest's STE dwords 0-1 (IOMMU_HWPT_DATA_ARM_SMMUV3) */
export const iommu_hwpt_arm_smmuv3 = defineStruct('iommu_hwpt_arm_smmuv3', [['ste', 'u64[2]']]);

/** struct iommu_viommu_arm_smmuv3_invalidate { __aligned_le64 cmd[2]; }: one guest command (IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3) */
export const iommu_viommu_arm_smmuv3_invalidate = defineStruct('iommu_viommu_arm_smmuv3_invalidate', [['cmd', 'u64[2]']]);

/** struct iommu_hwpt_vtd_s1: the guest's first-stage table for a nested HWPT (IOMMU_HWPT_DATA_VTD_S1) */
export const iommu_hwpt_vtd_s1 = defineStruct('iommu_hwpt_vtd_s1', [
  ['flags', 'u64'],
  ['pgtbl_addr', 'u64'],
  ['addr_width', 'u32'],
  ['__reserved', 'u32'],
]);

/** struct iommu_hwpt_vtd_s1_invalidate: one guest invalidation (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) */
export const iommu_hwpt_vtd_s1_invalidate = defineStruct('iommu_hwpt_vtd_s1_invalidate', [
  ['addr', 'u64'],
  ['npages', 'u64'],
  ['flags', 'u32'],
  ['__reserved', 'u32'],
]);

// --- Virtual event queues (iommufd.h, v6.15+) -------------------------------------------
/** enum iommu_veventq_flag: a header with no data after it, at the tail, for events lost there */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
/** enum iommu_veventq_type */
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
export const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2;

/** struct iommufd_vevent_header: before each vEVENT read from a vEVENTQ fd; sequence runs over [0, INT_MAX] */
export const iommufd_vevent_header = defineStruct('iommufd_vevent_header', [
  ['flags', 'u32'],
  ['sequence', 'u32'],
]);

/** struct iommu_vevent_arm_smmuv3 { __aligned_le64 evt[4]; }: an SMMUv3 event record with the vSID in the StreamID field */
export const iommu_vevent_arm_smmuv3 = defineStruct('iommu_vevent_arm_smmuv3', [['evt', 'u64[4]']]);

/** struct iommu_veventq_alloc (the minimum size ends at out_veventq_fd) */
export const iommu_veventq_alloc = defineStruct('iommu_veventq_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['viommu_id', 'u32'],
  ['type', 'u32'],
  ['veventq_depth', 'u32'],
  ['out_veventq_id', 'u32'],
  ['out_veventq_fd', 'u32'],
  ['__reserved', 'u32'],
]);

// --- Hardware queues, live update, no-IOMMU (iommufd.h, v6.13 - 7.3) ---------------------
/** enum iommu_hw_queue_type */
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
export const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1;

/** struct iommu_hw_queue_alloc (the minimum size ends at length) */
export const iommu_hw_queue_alloc = defineStruct('iommu_hw_queue_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['viommu_id', 'u32'],
  ['type', 'u32'],
  ['index', 'u32'],
  ['out_hw_queue_id', 'u32'],
  ['nesting_parent_iova', 'u64'],
  ['length', 'u64'],
]);

/** struct iommu_ioas_noiommu_get_pa (the minimum size ends at out_phys) */
export const iommu_ioas_noiommu_get_pa = defineStruct('iommu_ioas_noiommu_get_pa', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['__reserved', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
  ['out_phys', 'u64'],
]);

/** struct iommu_ioas_map_file (the minimum size ends at iova): IOMMU_IOAS_MAP from a memfd */
export const iommu_ioas_map_file = defineStruct('iommu_ioas_map_file', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['fd', 's32'],
  ['start', 'u64'],
  ['length', 'u64'],
  ['iova', 'u64'],
]);

/** struct iommu_ioas_change_process (the minimum size ends at __reserved) */
export const iommu_ioas_change_process = defineStruct('iommu_ioas_change_process', [
  ['size', 'u32'],
  ['__reserved', 'u32'],
]);
