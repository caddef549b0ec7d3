import { EBADF, EFAULT, EINVAL, EISDIR, EMFILE, ENODEV, ENOENT, ENOMEM, ENOTDIR, ENOTTY, ESPIPE } from '../uapi/errno.ts';
import { MFD_ALL_FLAGS, MFD_EXEC, MFD_HUGETLB, MFD_NAME_MAX_LEN, MFD_NOEXEC_SEAL } from '../uapi/memfd.ts';
import { EventFd } from './eventfd.ts';
import { MemFd } from './memfd.ts';
import { Mm, PROT_READ, PROT_WRITE, type Placement, type VmaFile, type VmaIo } from './mm.ts';
import type { FileMapping, FileRefs, OpenFile, Vfs } from './vfs.ts';
import { UserStruct, type Users } from './user.ts';
import { openNonDevice } from './sysfs-file.ts';
import { Attachment } from '../lib/attachment.ts';

export interface SpawnOptions {
  /** RLIMIT_MEMLOCK in bytes (default 8 MiB, Linux's default); Infinity or a huge bigint for unlimited. */
  memlockLimit?: number | bigint;
  /** CAP_IPC_LOCK: locked memory is not limited. */
  capIpcLock?: boolean;
  uid?: number;
}

export interface MmapOptions {
  prot?: number;
  hugepage?: '2M' | '1G';
  populate?: boolean;
  /** A file mapping: the fd and the byte offset in it (page aligned), e.g. a VFIO device region. */
  fd?: number;
  offset?: bigint;
  /** MAP_SHARED (default for file mappings); false asks for MAP_PRIVATE, which device files refuse. */
  shared?: boolean;
  /** Where to map: a hint, or with `fixed` exactly there (MAP_FIXED: page aligned, replaces what was mapped). */
  addr?: bigint;
  fixed?: boolean;
}

/** RLIMIT_NOFILE's usual soft limit. */
const MAX_FDS = 1024;
const DEFAULT_MEMLOCK = 8 * 2 ** 20;

/** What the process surface needs from the kernel around it. */
export interface ProcessHost {
  readonly vfs: Vfs;
  /** The per-uid structs (absent in bare test hosts: each process then has its own). */
  readonly users?: Users;
  /** Open files' reference counts, shared by every process (fork shares files). */
  readonly files: FileRefs;
  /** Live memfds (for leak checks). */
  readonly memfds?: Set<MemFd>;
  /** A child of `parent` (kernel/fork.c): its mm a copy of the parent's, or -errno. */
  fork(parent: Process): Process | number;
  processExited(p: Process): void;
}

/** Which file (and what the file's mmap gave) each file or I/O mapping holds, for fork to hold it again. */
const mappedFile = new Attachment<VmaFile | VmaIo, { file: OpenFile; m?: FileMapping }>('mapped file');

/**
 * One emulated Linux process: the syscall surface of shared/CONTRACT.md.
 * Every call returns a result or a negative errno and never throws for bad
 * arguments. Kernel code reaches user memory only through copyFromUser /
 * copyToUser, which fault pages in or give -EFAULT as Linux does.
 */
export class Process {
  readonly pid: number;
  readonly uid: number;
  /** current_user(): shared by every process of this uid on the host. */
  readonly user: UserStruct;
  readonly capIpcLock: boolean;
  /** RLIMIT_MEMLOCK in bytes (Infinity when unlimited). */
  readonly memlockLimit: number;
  readonly mm: Mm;
  private readonly fds = new Map<number, OpenFile>();
  private exited = false;

  constructor(
    private readonly host: ProcessHost,
    pid: number,
    mm: Mm,
    opts: SpawnOptions = {},
  ) {
    this.pid = pid;
    this.mm = mm;
    this.uid = opts.uid ?? 1000;
    this.user = host.users?.get(this.uid) ?? new UserStruct(this.uid);
    this.capIpcLock = opts.capIpcLock ?? false;
    const lim = opts.memlockLimit ?? DEFAULT_MEMLOCK;
    this.memlockLimit = typeof lim === 'bigint' ? (lim >= 2n ** 53n ? Infinity : Number(lim)) : lim < 0 ? 0 : lim;
  }

  get alive(): boolean {
    return !this.exited;
  }

  // --- files ------------------------------------------------------------------

  open(path: string): number {
    if (this.exited) return -EBADF;
    if (typeof path !== 'string') return -EFAULT;
    const node = this.host.vfs.node(path);
    const fd = this.lowestFreeFd();
    if (fd < 0) return fd;
    // Not a device: a sysfs attribute or a directory (sysfs-file.ts).
    const file = node === undefined ? openNonDevice(this.host.vfs, path, (p) => this.readdir(p)) : node.open(this);
    if (typeof file === 'number') return file;
    this.fds.set(fd, file);
    this.host.files.get(file);
    return fd;
  }

  /** Install a kernel-created file (eventfd, fault queue, device fd) at the lowest free descriptor. */
  installFile(file: OpenFile): number {
    if (this.exited) return -EBADF;
    const fd = this.lowestFreeFd();
    if (fd >= 0) {
      this.fds.set(fd, file);
      this.host.files.get(file);
    }
    return fd;
  }

  private lowestFreeFd(): number {
    for (let fd = 3; fd < MAX_FDS; fd++) if (!this.fds.has(fd)) return fd;
    return -EMFILE;
  }

  /** The open file behind a descriptor (fdget), for ioctls that take an fd argument. */
  file(fd: number): OpenFile | undefined {
    return this.fds.get(fd);
  }

  /** close(): the fd's reference goes; the file is released when nothing else holds it (fput). */
  close(fd: number): number {
    const f = this.fds.get(fd);
    if (f === undefined) return -EBADF;
    this.fds.delete(fd);
    this.host.files.put(f);
    return 0;
  }

  ioctl(fd: number, request: number, arg: Uint8Array | number): number {
    const f = this.fds.get(fd);
    if (f === undefined) return -EBADF;
    if (f.ioctl === undefined) return -ENOTTY;
    if (!Number.isInteger(request) || request < 0 || request > 0xffffffff) return -ENOTTY;
    return f.ioctl(request >>> 0, arg, this);
  }

  read(fd: number, length: number): Uint8Array | number {
    const f = this.fds.get(fd);
    if (f === undefined) return -EBADF;
    if (!Number.isSafeInteger(length) || length < 0) return -EINVAL;
    return f.read === undefined ? -EINVAL : f.read(length, this);
  }

  write(fd: number, data: Uint8Array): number {
    const f = this.fds.get(fd);
    if (f === undefined) return -EBADF;
    if (!(data instanceof Uint8Array)) return -EFAULT;
    return f.write === undefined ? -EINVAL : f.write(data, this);
  }

  pread(fd: number, length: number, offset: bigint): Uint8Array | number {
    const f = this.fds.get(fd);
    if (f === undefined) return -EBADF;
    if (!Number.isSafeInteger(length) || length < 0 || typeof offset !== 'bigint' || offset < 0n) return -EINVAL;
    return f.pread === undefined ? -ESPIPE : f.pread(length, offset, this);
  }

  pwrite(fd: number, data: Uint8Array, offset: bigint): number {
    const f = this.fds.get(fd);
    if (f === undefined) return -EBADF;
    if (!(data instanceof Uint8Array) || typeof offset !== 'bigint' || offset < 0n) return -EINVAL;
    return f.pwrite === undefined ? -ESPIPE : f.pwrite(data, offset, this);
  }

  /** lseek(2): the new offset, or -ESPIPE for a file that cannot seek (devices, eventfds, queues). */
  lseek(fd: number, offset: bigint, whence: number): bigint | number {
    const f = this.fds.get(fd);
    if (f === undefined) return -EBADF;
    if (typeof offset !== 'bigint') return -EINVAL;
    return f.llseek === undefined ? -ESPIPE : f.llseek(offset, whence);
  }

  eventfd(initval = 0): number {
    if (!Number.isInteger(initval) || initval < 0 || initval > 0xffffffff) return -EINVAL;
    return this.installFile(new EventFd(initval));
  }

  /**
   * memfd_create(2): an fd of anonymous file memory, size 0 (set it with
   * ftruncate). Flags beyond MFD_ALL_FLAGS, or MFD_EXEC with
   * MFD_NOEXEC_SEAL, are -EINVAL (sanitize_flags); a name longer than
   * MFD_NAME_MAX_LEN bytes -EINVAL. MFD_HUGETLB (a hugetlbfs file) is not
   * modelled: -EINVAL.
   */
  memfd_create(name: string, flags = 0): number {
    if (this.exited) return -EBADF;
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff_ffff) return -EINVAL;
    if ((flags & ~MFD_ALL_FLAGS) !== 0 || (flags & MFD_HUGETLB) !== 0) return -EINVAL;
    if ((flags & MFD_EXEC) !== 0 && (flags & MFD_NOEXEC_SEAL) !== 0) return -EINVAL;
    if (typeof name !== 'string') return -EFAULT;
    if (new TextEncoder().encode(name).length > MFD_NAME_MAX_LEN) return -EINVAL;
    return this.installFile(new MemFd(this.mm.pages, this.mm.mem, name, flags, this.host.memfds));
  }

  /** ftruncate(2): a negative length -EINVAL, no such fd -EBADF, a file that is not a regular file -EINVAL. */
  ftruncate(fd: number, length: number | bigint): number {
    const len = typeof length === 'bigint' ? (length > 2n ** 62n ? Infinity : Number(length)) : length;
    if (typeof len !== 'number' || Number.isNaN(len) || len < 0) return -EINVAL;
    const f = this.fds.get(fd);
    if (f === undefined) return -EBADF;
    if (f.truncate === undefined) return -EINVAL;
    return f.truncate(Number.isSafeInteger(len) ? len : Number.MAX_SAFE_INTEGER + 1);
  }

  // --- memory -----------------------------------------------------------------

  mmap(length: number | bigint, options: MmapOptions = {}): bigint {
    if (this.exited) return BigInt(-EINVAL);
    const len = typeof length === 'bigint' ? (length > 2n ** 52n ? -1 : Number(length)) : length;
    if (!Number.isSafeInteger(len) || len <= 0) return BigInt(-EINVAL);
    const where = placement(options);
    if (typeof where === 'number') return BigInt(where);
    if (options.fd !== undefined) return BigInt(this.mmapFile(len, options, where));
    const pageSize = options.hugepage === '2M' ? 2 ** 21 : options.hugepage === '1G' ? 2 ** 30 : 4096;
    if (options.hugepage !== undefined && pageSize === 4096) return BigInt(-EINVAL);
    const r = this.mm.mmap(len, options.prot ?? PROT_READ | PROT_WRITE, pageSize, options.populate ?? false, where);
    return BigInt(r);
  }

  /**
   * mmap of a file: -EBADF for no such fd, -ENODEV when the file has no mmap,
   * -EINVAL for an unaligned offset or with a hugepage; the file decides the
   * rest (vfio_pci_core_mmap). The mapping holds the file open.
   */
  private mmapFile(len: number, o: MmapOptions, where: Placement): number {
    const f = this.fds.get(o.fd!);
    if (f === undefined) return -EBADF;
    const offset = o.offset ?? 0n;
    if (typeof offset !== 'bigint' || offset < 0n || offset % 4096n !== 0n || o.hugepage !== undefined) return -EINVAL;
    const prot = o.prot ?? PROT_READ | PROT_WRITE;
    const cache = f.pageCache;
    if (cache !== undefined) {
      if (offset > BigInt(Number.MAX_SAFE_INTEGER)) return -EINVAL;
      const r = this.mm.mmapFile(len, prot, (base) => fileVma(this.host.files, f, { cache, base, offset: Number(offset), shared: o.shared ?? true }), where);
      return r;
    }
    if (f.mmap === undefined) return -ENODEV;
    const m = f.mmap(Math.ceil(len / 4096) * 4096, offset, o.shared ?? true, this);
    if (typeof m === 'number') return m;
    const r = this.mm.mmapIo(len, prot, (base) => ioVma(this.host.files, f, m, base), where);
    if (r < 0) m.unmapped?.();
    return r;
  }

  munmap(addr: bigint, length: number | bigint): number {
    const a = toUserAddr(addr);
    const len = typeof length === 'bigint' ? Number(length) : length;
    if (a === undefined) return -EINVAL;
    return this.mm.munmap(a, len);
  }

  mprotect(addr: bigint, length: number | bigint, prot: number): number {
    const a = toUserAddr(addr);
    if (a === undefined) return -EINVAL;
    return this.mm.mprotect(a, typeof length === 'bigint' ? Number(length) : length, prot);
  }

  memWrite(addr: bigint, data: Uint8Array): number {
    const a = toUserAddr(addr);
    if (a === undefined) return -EFAULT;
    const r = this.mm.access(a, data, true);
    return r < 0 ? r : data.length;
  }

  memRead(addr: bigint, length: number): Uint8Array | number {
    const a = toUserAddr(addr);
    if (a === undefined || !Number.isSafeInteger(length) || length < 0) return -EFAULT;
    const buf = new Uint8Array(length);
    const r = this.mm.access(a, buf, false);
    return r < 0 ? r : buf;
  }

  /** copy_from_user: the kernel reading this process's memory. */
  copyFromUser(addr: bigint | number, length: number): Uint8Array | number {
    const a = typeof addr === 'bigint' ? toUserAddr(addr) : addr;
    if (a === undefined) return -EFAULT;
    const buf = new Uint8Array(length);
    return this.mm.access(a, buf, false) < 0 ? -EFAULT : buf;
  }

  /** copy_to_user. */
  copyToUser(addr: bigint | number, data: Uint8Array): number {
    const a = typeof addr === 'bigint' ? toUserAddr(addr) : addr;
    if (a === undefined) return -EFAULT;
    return this.mm.access(a, data, true) < 0 ? -EFAULT : 0;
  }

  // --- sysfs --------------------------------------------------------------------

  readFile(path: string): string | number {
    const e = this.host.vfs.sysfsEntry(path);
    if (e === undefined) return this.host.vfs.impliedChildren(path) ? -EISDIR : -ENOENT;
    if (e.kind === 'dir') return -EISDIR;
    if (e.kind === 'link') return -EINVAL;
    return e.read();
  }

  readlink(path: string): string | number {
    const e = this.host.vfs.sysfsEntry(path);
    if (e === undefined) return this.host.vfs.impliedChildren(path) ? -EINVAL : -ENOENT;
    return e.kind === 'link' ? e.target() : -EINVAL;
  }

  readdir(path: string): string[] | number {
    if (path.split('/').every((p) => p === '' || p === '.')) return ['dev', 'sys'];
    if (path === '/dev' || path.startsWith('/dev/')) {
      const dir = path.replace(/\/+$/, '') + '/';
      const names = new Set(this.host.vfs.devicePaths(dir).map((p) => p.slice(dir.length).split('/')[0]!));
      return names.size > 0 ? [...names].sort() : -ENOENT;
    }
    const e = this.host.vfs.sysfsEntry(path);
    if (e?.kind === 'dir') return e.list();
    if (e !== undefined) return -ENOTDIR;
    return this.host.vfs.impliedChildren(path) ?? -ENOENT;
  }

  // --- exit -----------------------------------------------------------------------

  // --- fork ------------------------------------------------------------------------

  /**
   * fork(2): a child whose mm is a copy-on-write copy of this one (pages this
   * process may have pinned are copied at once), sharing every open file
   * through a copy of the fd table: an iommufd, a VFIO container or device in
   * the child is the same object, pins and locked-memory charges stay with
   * whoever made them, and the child starts with nothing locked or pinned.
   * CONTRACT.md: the child. Like spawn, it throws only when the machine has
   * no memory left for the copy (fork(2)'s ENOMEM), or when this process has
   * exited (an exited process makes no calls).
   */
  fork(): Process {
    if (this.exited) throw new Error(`fork: process ${this.pid} has exited`);
    const child = this.host.fork(this);
    if (typeof child === 'number') throw new Error(`fork: out of memory for the child's address space (${child})`);
    return child;
  }

  /** The child's side of fork: the same files at the same descriptors, each held once more. */
  inheritFiles(parent: Process): void {
    for (const [fd, f] of parent.fds) {
      this.fds.set(fd, f);
      this.host.files.get(f);
    }
  }

  /** Exit: every fd closes (releasing what it held), then the mm goes. */
  exit(): void {
    if (this.exited) return;
    for (const fd of [...this.fds.keys()].sort((a, b) => a - b)) this.close(fd);
    this.exited = true;
    this.mm.teardown();
    this.host.processExited(this);
  }
}

/** The `addr`/`fixed` options as an Mm placement; MAP_FIXED needs an address (-EINVAL without one). */
function placement(o: MmapOptions): Placement | number {
  if (o.addr === undefined) return o.fixed === true ? -EINVAL : {};
  if (typeof o.addr !== 'bigint' || o.addr < 0n) return -EINVAL;
  // Beyond any user space: MAP_FIXED there is -ENOMEM (addr > TASK_SIZE - len); a hint is ignored.
  if (o.addr >= 2n ** 57n) return o.fixed === true ? -ENOMEM : {};
  return { addr: Number(o.addr), fixed: o.fixed === true };
}

/** User addresses are u64 at the API; a 48/57-bit user space fits a number exactly. */
function toUserAddr(addr: bigint): number | undefined {
  if (typeof addr !== 'bigint' || addr < 0n || addr >= 2n ** 57n) return undefined;
  return Number(addr);
}


/** The file side of a mapping of `f`'s pages; the mapping holds the file until its last piece goes. */
function fileVma(files: FileRefs, f: OpenFile, v: Omit<VmaFile, 'release'>): VmaFile {
  files.get(f);
  const vf: VmaFile = { ...v, release: () => files.put(f) };
  mappedFile.set(vf, { file: f });
  return vf;
}

/** The device side of an I/O mapping of `f` (what its mmap gave); the mapping holds the file. */
function ioVma(files: FileRefs, f: OpenFile, m: FileMapping, base: number): VmaIo {
  files.get(f);
  const io: VmaIo = {
    base,
    phys: m.phys,
    accessible: () => m.accessible(),
    release: () => {
      m.unmapped?.();
      files.put(f);
    },
  };
  mappedFile.set(io, { file: f, m });
  return io;
}

/** What a child's copies of file and I/O mappings hold: the same files, once more each (dup_mmap's get_file). */
export function forkMappings(files: FileRefs): { io(io: VmaIo): VmaIo; file(vf: VmaFile): VmaFile } {
  return {
    io: (io) => {
      const h = mappedFile.get(io)!;
      return ioVma(files, h.file, h.m!, io.base);
    },
    file: (vf) => fileVma(files, mappedFile.get(vf)!.file, { cache: vf.cache, base: vf.base, offset: vf.offset, shared: vf.shared }),
  };
}
