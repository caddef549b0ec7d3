import type { PageCache } from './mm.ts';
import type { Process } from './process.ts';

/** The operations of an open file; an absent one gets the errno Linux gives for it. */
export interface OpenFile {
  ioctl?(request: number, arg: Uint8Array | number, proc: Process): number;
  read?(length: number, proc: Process): Uint8Array | number;
  write?(data: Uint8Array, proc: Process): number;
  pread?(length: number, offset: bigint, proc: Process): Uint8Array | number;
  pwrite?(data: Uint8Array, offset: bigint, proc: Process): number;
  /**
   * mmap of the file (MAP_SHARED unless `shared` is false): the device memory
   * behind [offset, offset + length) and whether the CPU may reach it now, or
   * -errno. The mapping holds a reference on the file until it is unmapped.
   */
  mmap?(length: number, offset: bigint, shared: boolean, proc: Process): FileMapping | number;
  /** The last reference is gone (close, or process exit). */
  release?(): void;
  /** A file of memory pages (a memfd): mmap maps them, IOMMU_IOAS_MAP_FILE pins them. */
  readonly pageCache?: PageCache;
  /** ftruncate(); absent: -EINVAL (not a regular file). */
  truncate?(length: number): number;
  /**
   * Readiness now, as file_operations.poll reports it (POLLIN, POLLOUT, ...
   * in src/uapi/poll.ts); a file without one is always ready (DEFAULT_POLLMASK).
   */
  poll?(): number;
  /** lseek(2): the new position, or -errno; absent: the file cannot seek (-ESPIPE). */
  llseek?(offset: bigint, whence: number): bigint | number;
}

/**
 * The references on open files (struct file's f_count): each fd table entry
 * (in every process that inherited it), each mapping of the file and each
 * kernel object holding the file (an iommufd mapping of a memfd) holds one;
 * the last put releases the file.
 */
export class FileRefs {
  private readonly refs = new Map<OpenFile, number>();

  /** get_file() */
  get(f: OpenFile): void {
    this.refs.set(f, (this.refs.get(f) ?? 0) + 1);
  }

  /** fput(): the last reference releases the file. */
  put(f: OpenFile): void {
    const n = (this.refs.get(f) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(f, n);
      return;
    }
    this.refs.delete(f);
    f.release?.();
  }

  count(f: OpenFile): number {
    return this.refs.get(f) ?? 0;
  }
}

/** What a file's mmap maps: device memory at a physical address, reachable while `accessible()` says so. */
export interface FileMapping {
  phys: number;
  accessible(): boolean;
  /** The mapping is gone (munmap, exit). */
  unmapped?(): void;
}

/** A device node: opening it gives an OpenFile or a negative errno. */
export interface DeviceNode {
  open(proc: Process): OpenFile | number;
}

/** A sysfs entry: a file with text, a symlink, or a directory listing. */
export type SysfsEntry =
  | { kind: 'file'; read: () => string }
  | { kind: 'link'; target: () => string }
  | { kind: 'dir'; list: () => string[] };

/**
 * The host's small VFS: device nodes under /dev and a read-only sysfs,
 * registered by drivers and front ends as they bind.
 */
export class Vfs {
  private readonly nodes = new Map<string, DeviceNode>();
  private readonly sysfs = new Map<string, SysfsEntry>();

  register(path: string, node: DeviceNode): void {
    if (this.nodes.has(path)) throw new Error(`${path} already registered`);
    this.nodes.set(path, node);
  }

  unregister(path: string): void {
    this.nodes.delete(path);
  }

  node(path: string): DeviceNode | undefined {
    return this.nodes.get(normalize(path));
  }

  devicePaths(prefix = '/dev/'): string[] {
    return [...this.nodes.keys()].filter((p) => p.startsWith(prefix)).sort();
  }

  addSysfs(path: string, entry: SysfsEntry): void {
    this.sysfs.set(normalize(path), entry);
  }

  removeSysfs(prefix: string): void {
    for (const p of [...this.sysfs.keys()]) if (p === prefix || p.startsWith(prefix + '/')) this.sysfs.delete(p);
  }

  sysfsEntry(path: string): SysfsEntry | undefined {
    return this.sysfs.get(normalize(path));
  }

  /** Directories that exist only because entries lie below them. */
  impliedChildren(path: string): string[] | undefined {
    const dir = normalize(path) + '/';
    const names = new Set<string>();
    for (const p of this.sysfs.keys()) if (p.startsWith(dir)) names.add(p.slice(dir.length).split('/')[0]!);
    return names.size > 0 ? [...names].sort() : undefined;
  }
}

function normalize(path: string): string {
  // Most paths (every sysfs entry a machine adds) are already in this form: no copy.
  if (isNormal(path)) return path;
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return '/' + parts.join('/');
}

/** Absolute, with no empty or "." component and no trailing slash ("/" itself is normal). */
function isNormal(path: string): boolean {
  if (path === '/') return true;
  if (path.charCodeAt(0) !== 0x2f || path.charCodeAt(path.length - 1) === 0x2f) return false;
  return !path.includes('//') && !path.includes('/./') && !path.endsWith('/.');
}
