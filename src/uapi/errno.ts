/**
 * Linux errno values (include/uapi/asm-generic/errno-base.h and errno.h; the
 * same on x86-64 and arm64). Syscalls return them negated.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EPIPE = 32;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const EOVERFLOW = 75;
export const EBADFD = 77;
export const EMSGSIZE = 90;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const ETIMEDOUT = 110;

const NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 6: 'ENXIO', 7: 'E2BIG', 9: 'EBADF', 11: 'EAGAIN',
  12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV', 20: 'ENOTDIR', 21: 'EISDIR',
  22: 'EINVAL', 23: 'ENFILE', 24: 'EMFILE', 25: 'ENOTTY', 27: 'EFBIG', 28: 'ENOSPC', 29: 'ESPIPE', 30: 'EROFS', 32: 'EPIPE', 34: 'ERANGE',
  35: 'EDEADLK', 36: 'ENAMETOOLONG', 38: 'ENOSYS', 75: 'EOVERFLOW', 77: 'EBADFD', 90: 'EMSGSIZE', 95: 'EOPNOTSUPP', 98: 'EADDRINUSE', 110: 'ETIMEDOUT',
};

/** 'EINVAL' for 22 or -22. */
export function errnoName(e: number): string {
  return NAMES[Math.abs(e)] ?? `errno ${Math.abs(e)}`;
}
