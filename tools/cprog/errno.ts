/**
 * errno values at the boundary: the emulated kernel answers with Linux's
 * numbers (src/uapi/errno.ts), a program built with wasi-libc compares errno
 * with WASI's (wasi/api.h __WASI_ERRNO_*). Every Linux errno the kernel
 * returns has a WASI twin of the same name, but EBADFD (WASI has none:
 * EBADF, the nearest meaning) and ELOOP, which WASI names LOOP.
 */
import { errnoName } from '../../src/uapi/errno.ts';

/** __WASI_ERRNO_* by Linux name. */
export const WASI_ERRNO: Readonly<Record<string, number>> = {
  E2BIG: 1, EACCES: 2, EADDRINUSE: 3, EADDRNOTAVAIL: 4, EAFNOSUPPORT: 5, EAGAIN: 6, EALREADY: 7, EBADF: 8, EBADMSG: 9,
  EBUSY: 10, ECANCELED: 11, ECHILD: 12, ECONNABORTED: 13, ECONNREFUSED: 14, ECONNRESET: 15, EDEADLK: 16, EDESTADDRREQ: 17,
  EDOM: 18, EDQUOT: 19, EEXIST: 20, EFAULT: 21, EFBIG: 22, EHOSTUNREACH: 23, EIDRM: 24, EILSEQ: 25, EINPROGRESS: 26,
  EINTR: 27, EINVAL: 28, EIO: 29, EISCONN: 30, EISDIR: 31, ELOOP: 32, EMFILE: 33, EMLINK: 34, EMSGSIZE: 35, EMULTIHOP: 36,
  ENAMETOOLONG: 37, ENETDOWN: 38, ENETRESET: 39, ENETUNREACH: 40, ENFILE: 41, ENOBUFS: 42, ENODEV: 43, ENOENT: 44,
  ENOEXEC: 45, ENOLCK: 46, ENOLINK: 47, ENOMEM: 48, ENOMSG: 49, ENOPROTOOPT: 50, ENOSPC: 51, ENOSYS: 52, ENOTCONN: 53,
  ENOTDIR: 54, ENOTEMPTY: 55, ENOTRECOVERABLE: 56, ENOTSOCK: 57, EOPNOTSUPP: 58, ENOTTY: 59, ENXIO: 60, EOVERFLOW: 61,
  EOWNERDEAD: 62, EPERM: 63, EPIPE: 64, EPROTO: 65, EPROTONOSUPPORT: 66, EPROTOTYPE: 67, ERANGE: 68, EROFS: 69,
  ESPIPE: 70, ESRCH: 71, ESTALE: 72, ETIMEDOUT: 73, ETXTBSY: 74, EXDEV: 75,
  EBADFD: 8,
};

export const WASI_ENOSYS = WASI_ERRNO.ENOSYS!;

const cache = new Map<number, number>();

/** The WASI errno for a Linux errno (given positive or negative); EIO for one without a twin. */
export function wasiErrno(linux: number): number {
  const e = Math.abs(linux);
  let w = cache.get(e);
  if (w === undefined) {
    w = WASI_ERRNO[errnoName(e)] ?? WASI_ERRNO.EIO!;
    cache.set(e, w);
  }
  return w;
}
