import { EFAULT, EFBIG, EINVAL, ENOMEM } from '../uapi/errno.ts';
import type { PhysMem } from '../memory/phys-mem.ts';
import type { Mm, PageCache } from './mm.ts';
import type { PageRefs } from './page-refs.ts';
import type { OpenFile } from './vfs.ts';

const PAGE = 4096;
/** MAX_LFS_FILESIZE stands here for the largest size a number holds exactly. */
const MAX_SIZE = Number.MAX_SAFE_INTEGER;

/**
 * A memfd (memfd_create(2) over shmem, mm/memfd.c and mm/shmem.c): anonymous
 * file memory. Its pages live in the file's page cache, allocated on first
 * touch and held by the file until it is truncated or released; mmap with
 * MAP_SHARED maps those very pages (so every process and every mapping sees
 * the same bytes, and IOMMU_IOAS_MAP_FILE pins them), MAP_PRIVATE copies on
 * write. read/write/pread/pwrite reach the same pages. ftruncate sets the
 * size; shrinking zaps the pages past the end from every mapping (SIGBUS on
 * a later access there) and zeroes the tail of the last page.
 * Not modelled: MFD_HUGETLB (hugetlbfs files), seals (no fcntl).
 */
export class MemFd implements OpenFile, PageCache {
  size = 0;
  /** The file position of read/write. */
  private pos = 0;
  /** Page index -> physical page, the cache's own reference each. */
  private readonly cache = new Map<number, number>();
  /** Mms mapping this file, with how many mappings each (i_mmap). */
  private readonly mappers = new Map<Mm, number>();
  private released = false;

  constructor(
    private readonly pages: PageRefs,
    private readonly mem: PhysMem,
    readonly name: string,
    readonly flags: number,
    /** The host's live memfds, for leak checks: this file leaves it when released. */
    private readonly live?: Set<MemFd>,
  ) {
    live?.add(this);
  }

  get pageCache(): PageCache {
    return this;
  }

  /** Pages the cache holds now (index order). */
  cachedPages(): number[] {
    return [...this.cache.values()];
  }

  // --- PageCache ------------------------------------------------------------

  page(index: number): number {
    if (this.released || index * PAGE >= this.size) return -EFAULT;
    let head = this.cache.get(index);
    if (head === undefined) {
      head = this.pages.alloc(0);
      if (head === undefined) return -ENOMEM;
      this.cache.set(index, head);
    }
    return head;
  }

  addMapper(mm: Mm): void {
    this.mappers.set(mm, (this.mappers.get(mm) ?? 0) + 1);
  }

  removeMapper(mm: Mm): void {
    const n = (this.mappers.get(mm) ?? 1) - 1;
    if (n > 0) this.mappers.set(mm, n);
    else this.mappers.delete(mm);
  }

  // --- file operations ----------------------------------------------------------

  /** ftruncate(): 0, or -EINVAL / -EFBIG for a size a file cannot have. */
  truncate(length: number): number {
    if (!Number.isSafeInteger(length) || length < 0) return -EINVAL;
    if (length > MAX_SIZE) return -EFBIG;
    if (length < this.size) {
      const keep = Math.ceil(length / PAGE);
      for (const mm of this.mappers.keys()) mm.zapFile(this, keep);
      for (const [i, head] of [...this.cache]) {
        if (i < keep) continue;
        this.cache.delete(i);
        this.pages.put(head);
      }
      // truncate_inode_pages(): the bytes past the new end in its last page read as zeros.
      const tail = length % PAGE;
      const last = this.cache.get(keep - 1);
      if (tail !== 0 && last !== undefined) this.mem.writeFrom(last + tail, new Uint8Array(PAGE - tail));
    }
    this.size = length;
    return 0;
  }

  pread(length: number, offset: bigint): Uint8Array | number {
    if (offset > BigInt(MAX_SIZE)) return new Uint8Array(0);
    const off = Number(offset);
    const n = Math.max(0, Math.min(length, this.size - off));
    const out = new Uint8Array(n);
    for (let done = 0; done < n; ) {
      const at = off + done;
      const k = Math.min(n - done, PAGE - (at % PAGE));
      const head = this.cache.get(Math.floor(at / PAGE));
      // A hole reads as zeros without allocating (shmem_file_read_iter).
      if (head !== undefined) this.mem.readInto(head + (at % PAGE), out.subarray(done, done + k));
      done += k;
    }
    return out;
  }

  pwrite(data: Uint8Array, offset: bigint): number {
    if (offset + BigInt(data.length) > BigInt(MAX_SIZE)) return -EFBIG;
    const off = Number(offset);
    // shmem_write_begin(): the file grows to hold what is written.
    const end = off + data.length;
    const oldSize = this.size;
    if (end > this.size) this.size = end;
    for (let done = 0; done < data.length; ) {
      const at = off + done;
      const k = Math.min(data.length - done, PAGE - (at % PAGE));
      const head = this.page(Math.floor(at / PAGE));
      if (head < 0) {
        if (done === 0) {
          this.size = oldSize;
          return head;
        }
        this.size = Math.max(oldSize, at);
        return done;
      }
      this.mem.writeFrom(head + (at % PAGE), data.subarray(done, done + k));
      done += k;
    }
    return data.length;
  }

  read(length: number): Uint8Array | number {
    const r = this.pread(length, BigInt(this.pos));
    if (typeof r !== 'number') this.pos += r.length;
    return r;
  }

  write(data: Uint8Array): number {
    const r = this.pwrite(data, BigInt(this.pos));
    if (r > 0) this.pos += r;
    return r;
  }

  /** The last reference went: the pages go back (the mappings and pins that hold some keep theirs). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const head of this.cache.values()) this.pages.put(head);
    this.cache.clear();
    this.live?.delete(this);
  }
}
