/**
 * ioctl request numbers (include/uapi/asm-generic/ioctl.h): dir[31:30],
 * size[29:16], type[15:8], nr[7:0]. VFIO and iommufd use plain _IO() numbers
 * with the struct size carried in the struct itself (argsz / size).
 */
export const IOC_NONE = 0;
export const IOC_WRITE = 1;
export const IOC_READ = 2;

export function IOC(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}

export function IO(type: number | string, nr: number): number {
  return IOC(IOC_NONE, typeof type === 'string' ? type.charCodeAt(0) : type, nr, 0);
}
