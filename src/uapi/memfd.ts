/** memfd_create(2) flags (include/uapi/linux/memfd.h). */
export const MFD_CLOEXEC = 0x0001;
export const MFD_ALLOW_SEALING = 0x0002;
export const MFD_HUGETLB = 0x0004;
export const MFD_NOEXEC_SEAL = 0x0008;
export const MFD_EXEC = 0x0010;
/** Every flag memfd_create knows (MFD_ALL_FLAGS, mm/memfd.c). */
export const MFD_ALL_FLAGS = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/** MFD_NAME_MAX_LEN: NAME_MAX minus the "memfd:" prefix. */
export const MFD_NAME_MAX_LEN = 255 - 'memfd:'.length;
