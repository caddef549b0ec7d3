/** Errnos iommufd returns that src/host/errno.ts does not list yet (include/uapi/asm-generic/errno.h). */
export const EBADFD = 77;
export const EADDRINUSE = 98;
