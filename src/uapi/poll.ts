/**
 * poll(2) event bits (include/uapi/asm-generic/poll.h, the same values as
 * EPOLL* in eventpoll.h), as a file's poll operation reports readiness.
 */
export const POLLIN = 0x0001;
export const POLLPRI = 0x0002;
export const POLLOUT = 0x0004;
export const POLLERR = 0x0008;
export const POLLHUP = 0x0010;
export const POLLNVAL = 0x0020;
export const POLLRDNORM = 0x0040;
export const POLLWRNORM = 0x0100;
/** What vfs_poll() reports for a file without a poll operation (include/linux/poll.h). */
export const DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
