/**
 * The C side of a program's system calls, linked into every program
 * `ioemu cc` builds. Files, reads, writes, poll, sleeps, clocks and sysfs go
 * through wasi-libc to the WASI imports (tools/cprog/wasi.ts), which reach
 * the emulated process; what WASI has no word for comes here: ioctl (by
 * `-Wl,--wrap`), mmap and friends, eventfd, getpid/getuid, a 4 KiB page size
 * (wasi-libc says 64 KiB, a WebAssembly page), strerrorname_np. Those call the
 * `ioemu` imports (tools/cprog/syscalls.ts) with pointers as they are: a
 * pointer is a user address of the process. The imports return a result or
 * a negative errno in wasi-libc's numbering, which lands in errno here.
 *
 * Anonymous mmap carves page-aligned blocks from the heap and asks the kernel
 * to map fresh zero pages exactly there (MAP_FIXED); munmap unmaps the block
 * in the kernel and keeps it out of the heap (so a later access through the
 * kernel sees what Linux would: nothing mapped) until a later mmap of no more
 * bytes takes it again. File mappings (a BAR) cannot work: WebAssembly loads
 * and stores cannot reach device registers, so mmap of an fd fails with
 * ENODEV and programs use pread/pwrite on the region, as the VFIO uapi allows.
 */

/** Linker flags the shim needs: the wrapped libc functions. */
export const SHIM_WRAPPED = ['ioctl', 'sysconf', 'getpagesize'] as const;

/** Declarations C programs get from glibc that wasi-libc lacks (force-included by `ioemu cc`). */
export const COMPAT_H = `/* ioemu/compat.h: what glibc declares and wasi-libc does not; force-included by ioemu cc. */
#ifndef _IOEMU_COMPAT_H
#define _IOEMU_COMPAT_H
#include <sys/types.h>
#include <time.h>
/* Linux's other monotonic clocks: one virtual clock here. */
#ifndef CLOCK_MONOTONIC_RAW
#define CLOCK_MONOTONIC_RAW CLOCK_MONOTONIC
#endif
#ifndef CLOCK_BOOTTIME
#define CLOCK_BOOTTIME CLOCK_MONOTONIC
#endif
#ifdef __cplusplus
extern "C" {
#endif
const char *strerrorname_np(int);
const char *strerrordesc_np(int);
uid_t getuid(void);
uid_t geteuid(void);
gid_t getgid(void);
gid_t getegid(void);
int mlock(const void *, size_t);
int munlock(const void *, size_t);
int mlockall(int);
int munlockall(void);
#ifdef __cplusplus
}
#endif
#endif
`;

export const SHIM_C = String.raw`/* ioemu's syscall shim: generated into every program ioemu cc links (tools/cprog/shim.ts). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <ioemu/compat.h>

#define IMPORT(name) __attribute__((import_module("ioemu"), import_name(#name)))
IMPORT(ioctl) int32_t ioemu_ioctl(int32_t fd, uint32_t request, uint32_t arg);
IMPORT(map) int32_t ioemu_map(uint32_t addr, uint32_t length, int32_t prot, int32_t flags);
IMPORT(unmap) int32_t ioemu_unmap(uint32_t addr, uint32_t length);
IMPORT(protect) int32_t ioemu_protect(uint32_t addr, uint32_t length, int32_t prot);
IMPORT(eventfd) int32_t ioemu_eventfd(uint32_t initval, int32_t flags);
IMPORT(getpid) int32_t ioemu_getpid(void);
IMPORT(getuid) int32_t ioemu_getuid(void);

static long result(int32_t r)
{
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

int __wrap_ioctl(int fd, int request, ...)
{
	va_list ap;
	va_start(ap, request);
	/* Every VFIO/iommufd argument is an int or a pointer: one 32-bit word either way. */
	uintptr_t arg = (uintptr_t)va_arg(ap, void *);
	va_end(ap);
	return (int)result(ioemu_ioctl(fd, (uint32_t)request, (uint32_t)arg));
}

long __real_sysconf(int);
long __wrap_sysconf(int name)
{
	if (name == _SC_PAGESIZE)
		return 4096;
	if (name == _SC_NPROCESSORS_ONLN || name == _SC_NPROCESSORS_CONF)
		return 1;
	return __real_sysconf(name);
}

int __wrap_getpagesize(void)
{
	return 4096;
}

/* --- mmap: blocks of the heap, mapped afresh by the kernel ----------------- */

#define PAGE 4096u
#define HUGE_2M (2u << 20)

struct block {
	uintptr_t addr;
	size_t len;        /* bytes the block holds */
	size_t mapped;     /* bytes from addr the kernel maps now (0: free for the next mmap) */
	struct block *next;
};
static struct block *blocks;

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

static struct block *block_at(uintptr_t addr)
{
	for (struct block *b = blocks; b; b = b->next)
		if (b->addr == addr)
			return b;
	return 0;
}

static struct block *block_holding(uintptr_t addr, size_t len)
{
	for (struct block *b = blocks; b; b = b->next)
		if (addr >= b->addr && addr + len <= b->addr + b->len)
			return b;
	return 0;
}

/* A block unmapped earlier, big enough and aligned enough, or a new one from the heap. */
static struct block *take_block(size_t len, size_t align)
{
	for (struct block *b = blocks; b; b = b->next)
		if (b->mapped == 0 && b->len >= len && b->addr % align == 0)
			return b;
	void *p = aligned_alloc(align, len);
	if (!p)
		return 0;
	struct block *b = malloc(sizeof(*b));
	if (!b) {
		free(p);
		return 0;
	}
	*b = (struct block){ (uintptr_t)p, len, 0, blocks };
	blocks = b;
	return b;
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	if (length == 0 || (offset & (PAGE - 1))) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (!(flags & MAP_ANONYMOUS)) {
		/* A file mapping (a device BAR): WebAssembly cannot reach device memory with loads and stores. */
		(void)fd;
		errno = ENODEV;
		return MAP_FAILED;
	}
	size_t align = (flags & MAP_HUGETLB) ? HUGE_2M : PAGE;
	size_t len = round_up(length, align);
	uintptr_t at;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		/* Only inside memory an earlier mmap returned: anywhere else is the heap, the stack or static data. */
		struct block *b = block_holding((uintptr_t)addr, len);
		if (!b || ((uintptr_t)addr & (align - 1))) {
			errno = (uintptr_t)addr & (align - 1) ? EINVAL : ENOMEM;
			return MAP_FAILED;
		}
		at = (uintptr_t)addr;
		if ((flags & MAP_FIXED_NOREPLACE) && at < b->addr + b->mapped) {
			errno = EEXIST;
			return MAP_FAILED;
		}
		if (result(ioemu_map(at, len, prot, flags)) < 0)
			return MAP_FAILED;
		if (at + len - b->addr > b->mapped)
			b->mapped = at + len - b->addr;
		return (void *)at;
	}
	struct block *b = take_block(len, align);
	if (!b) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (result(ioemu_map(b->addr, len, prot, flags)) < 0)
		return MAP_FAILED;
	b->mapped = len;
	return (void *)b->addr;
}

int munmap(void *addr, size_t length)
{
	uintptr_t a = (uintptr_t)addr;
	if ((a & (PAGE - 1)) || length == 0) {
		errno = EINVAL;
		return -1;
	}
	if (!block_holding(a, round_up(length, PAGE)))
		return 0; /* nothing of ours mapped there: Linux's munmap of an unmapped range succeeds */
	if (result(ioemu_unmap(a, round_up(length, PAGE))) < 0)
		return -1;
	struct block *b = block_at(a);
	if (b && round_up(length, PAGE) >= b->mapped)
		b->mapped = 0;
	return 0;
}

int mprotect(void *addr, size_t length, int prot)
{
	return (int)result(ioemu_protect((uintptr_t)addr, length, prot));
}

int madvise(void *addr, size_t length, int advice)
{
	(void)addr, (void)length, (void)advice;
	return 0;
}

int posix_madvise(void *addr, size_t length, int advice)
{
	(void)addr, (void)length, (void)advice;
	return 0;
}

int msync(void *addr, size_t length, int flags)
{
	(void)addr, (void)length, (void)flags;
	return 0;
}

/* Every page a program can touch is resident to the process as soon as it is used: nothing to lock. */
int mlock(const void *addr, size_t length) { (void)addr, (void)length; return 0; }
int munlock(const void *addr, size_t length) { (void)addr, (void)length; return 0; }
int mlockall(int flags) { (void)flags; return 0; }
int munlockall(void) { return 0; }

/* --- eventfd, ids --------------------------------------------------------------- */

int eventfd(unsigned int initval, int flags)
{
	return (int)result(ioemu_eventfd(initval, flags));
}

int eventfd_read(int fd, eventfd_t *value)
{
	return read(fd, value, sizeof(*value)) == sizeof(*value) ? 0 : -1;
}

int eventfd_write(int fd, eventfd_t value)
{
	return write(fd, &value, sizeof(value)) == sizeof(value) ? 0 : -1;
}

pid_t getpid(void) { return ioemu_getpid(); }
uid_t getuid(void) { return (uid_t)ioemu_getuid(); }
uid_t geteuid(void) { return (uid_t)ioemu_getuid(); }
gid_t getgid(void) { return (gid_t)ioemu_getuid(); }
gid_t getegid(void) { return (gid_t)ioemu_getuid(); }

/* --- errno names (glibc's strerrorname_np) -------------------------------------- */

static const struct { int e; const char *name; } errno_names[] = {
#define N(x) { x, #x },
	N(E2BIG) N(EACCES) N(EADDRINUSE) N(EADDRNOTAVAIL) N(EAFNOSUPPORT) N(EAGAIN) N(EALREADY) N(EBADF)
	N(EBADMSG) N(EBUSY) N(ECANCELED) N(ECHILD) N(ECONNABORTED) N(ECONNREFUSED) N(ECONNRESET) N(EDEADLK)
	N(EDESTADDRREQ) N(EDOM) N(EDQUOT) N(EEXIST) N(EFAULT) N(EFBIG) N(EHOSTUNREACH) N(EIDRM) N(EILSEQ)
	N(EINPROGRESS) N(EINTR) N(EINVAL) N(EIO) N(EISCONN) N(EISDIR) N(ELOOP) N(EMFILE) N(EMLINK) N(EMSGSIZE)
	N(EMULTIHOP) N(ENAMETOOLONG) N(ENETDOWN) N(ENETRESET) N(ENETUNREACH) N(ENFILE) N(ENOBUFS) N(ENODEV)
	N(ENOENT) N(ENOEXEC) N(ENOLCK) N(ENOLINK) N(ENOMEM) N(ENOMSG) N(ENOPROTOOPT) N(ENOSPC) N(ENOSYS)
	N(ENOTCONN) N(ENOTDIR) N(ENOTEMPTY) N(ENOTRECOVERABLE) N(ENOTSOCK) N(EOPNOTSUPP) N(ENOTTY) N(ENXIO)
	N(EOVERFLOW) N(EOWNERDEAD) N(EPERM) N(EPIPE) N(EPROTO) N(EPROTONOSUPPORT) N(EPROTOTYPE) N(ERANGE)
	N(EROFS) N(ESPIPE) N(ESRCH) N(ESTALE) N(ETIMEDOUT) N(ETXTBSY) N(EXDEV)
#undef N
};

const char *strerrorname_np(int e)
{
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].e == e)
			return errno_names[i].name;
	return 0;
}

const char *strerrordesc_np(int e)
{
	return strerror(e);
}

/* --- statfs (<sys/vfs.h>): no file system to describe ----------------------------- */

struct statfs;
int statfs(const char *path, struct statfs *buf) { (void)path, (void)buf; errno = ENOSYS; return -1; }
int fstatfs(int fd, struct statfs *buf) { (void)fd, (void)buf; errno = ENOSYS; return -1; }
`;

/** <sys/vfs.h>, which wasi-libc lacks: Linux's statfs declarations (no file system to report: statfs fails with ENOSYS). */
export const SYS_VFS_H = `/* sys/vfs.h: ioemu's, for programs that include it (tools/cprog/shim.ts). */
#ifndef _IOEMU_SYS_VFS_H
#define _IOEMU_SYS_VFS_H
#include <sys/statvfs.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef struct { int __val[2]; } fsid_t;
struct statfs {
	unsigned long f_type, f_bsize;
	fsblkcnt_t f_blocks, f_bfree, f_bavail;
	fsfilcnt_t f_files, f_ffree;
	fsid_t f_fsid;
	unsigned long f_namelen, f_frsize, f_flags, f_spare[4];
};
int statfs(const char *, struct statfs *);
int fstatfs(int, struct statfs *);
#ifdef __cplusplus
}
#endif
#endif
`;
