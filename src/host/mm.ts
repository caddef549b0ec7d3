import type { PageTableBuilder } from '../iommu-core/io-pgtable.ts';
import { IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from '../iommu-core/io-pgtable.ts';
import type { InjectionPoint } from '../fault/injector.ts';
import type { PhysMem } from '../memory/phys-mem.ts';
import { EFAULT, EINVAL, ENOMEM, EPERM } from '../uapi/errno.ts';
import type { PageRefs } from './page-refs.ts';
import type { PageCache, VmaFile } from './file-pages.ts';
import { copyRun, forkMm, type ForkDup } from './mm-fork.ts';
import { ResidentTable } from './resident-table.ts';

export type { PageCache, VmaFile } from './file-pages.ts';

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

const PAGE = 4096;
const MIB2 = 2 ** 21;
const GIB = 2 ** 30;

/** A virtual memory area: [start, end) with one protection and one backing page size. */
export interface Vma {
  start: number;
  end: number;
  prot: number;
  /** 4 KiB, or 2 MiB / 1 GiB for hugepage-backed areas. */
  pageSize: number;
  /** Device memory (VM_IO | VM_PFNMAP), as a driver's mmap sets up; absent for anonymous memory. */
  io?: VmaIo;
  /** A file's pages (an mmap of a memfd); absent for anonymous memory. */
  file?: VmaFile;
}

/**
 * The device side of an I/O mapping (a vfio-pci BAR mmap): the physical
 * address behind `base`, the fault handler's verdict, and who to tell when
 * the last piece of the mapping goes (the mapping holds the file).
 */
export interface VmaIo {
  /** User address mapped to `phys`; pieces split off by munmap/mprotect keep it. */
  readonly base: number;
  readonly phys: number;
  /** The fault handler (vfio_pci_mmap_fault): may the CPU reach the device now? false is SIGBUS. */
  accessible(): boolean;
  /** munmap or exit removed the last piece. */
  release(): void;
}

/** Someone sharing this mm's page tables (an SVA bond): told when translations change or the mm dies. */
export interface MmuNotifier {
  /** PTEs in [start, end) were cleared or changed; cached translations must go before pages are freed. */
  invalidateRange(start: number, end: number): void;
  /** The mm is being torn down. */
  release(): void;
}

export interface MmOptions {
  /** Where top-down mmap allocation starts (exclusive end of the mmap area). */
  mmapBase: number;
  /** Lowest address mmap may hand out (vm.mmap_min_addr); MAP_FIXED below it is -EPERM. */
  mmapMin: number;
  /** TASK_SIZE: the end of user space (default: the x86-64 4-level TASK_SIZE_MAX, 2^47 - 4096). */
  taskSize?: number;
}

/** Where mmap places a mapping: anywhere (top down), near a hint, or exactly at an address (MAP_FIXED). */
export interface Placement {
  addr?: number;
  /** MAP_FIXED: exactly at `addr`, replacing whatever was mapped there. */
  fixed?: boolean;
}

/**
 * Told when a page run becomes resident in this mm and when it leaves it:
 * whoever supplies the memory behind a process from outside the machine (a
 * C program's WebAssembly memory) adopts the run's frames on `mapped` and,
 * on `unmapped`, takes them back, leaving a copy where the run lives on
 * (still pinned for DMA: `stillReferenced`).
 */
export interface ResidencyObserver {
  mapped(va: number, pa: number, bytes: number): void;
  unmapped(va: number, pa: number, bytes: number, stillReferenced: boolean): void;
}

const TASK_SIZE_X86_64 = 2 ** 47 - PAGE;

/**
 * A process address space (Linux mm_struct): VMAs, the CPU page table in the
 * machine's format stored in guest memory (so an IOMMU can walk it for SVA),
 * demand paging, and the locked/pinned page accounting that VFIO and iommufd
 * charge. Anonymous memory only, as the front ends need.
 */
export class Mm {
  readonly pgtable: PageTableBuilder;
  /** Pages charged to RLIMIT_MEMLOCK (mm->locked_vm). */
  lockedVm = 0;
  /** Pages pinned through pin_user_pages (mm->pinned_vm). */
  pinnedVm = 0;
  /** The host's 'host.pin' injection point, checked once per batch pin_user_pages takes (set by the host). */
  pinPoint: InjectionPoint | undefined;
  private vmas: Vma[] = [];
  /** Resident mapping units: VA of the unit -> physical head of its page run. */
  private readonly resident = new ResidentTable();
  /**
   * Resident units of private mappings whose page this mm may not write in
   * place (PTE write-protected): an anonymous page shared copy-on-write with
   * another mm after fork (not PageAnonExclusive), or a file page a private
   * mapping reads. A write, or a long-term pin, gets a page of its own.
   */
  private readonly cow = new Set<number>();
  private readonly notifiers = new Set<MmuNotifier>();
  /** See ResidencyObserver (set by whoever runs the process, e.g. tools/cprog). */
  residency: ResidencyObserver | undefined;
  private dead = false;
  /** mm_count: the process's users count as one; mmgrab() holders (an SVA domain) one each. */
  private count = 1;
  /** What __mmdrop() runs (mm_pasid_drop), when the last reference goes. */
  private readonly dropHooks: (() => void)[] = [];

  constructor(
    readonly mem: PhysMem,
    readonly pages: PageRefs,
    pgtable: PageTableBuilder,
    private readonly opts: MmOptions,
  ) {
    this.pgtable = pgtable;
  }

  get alive(): boolean {
    return !this.dead;
  }

  areas(): readonly Vma[] {
    return this.vmas;
  }

  findVma(addr: number): Vma | undefined {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.vmas[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    const v = this.vmas[lo];
    return v !== undefined && v.start <= addr ? v : undefined;
  }

  addNotifier(n: MmuNotifier): void {
    this.notifiers.add(n);
  }

  removeNotifier(n: MmuNotifier): void {
    this.notifiers.delete(n);
  }

  // --- mm_count -------------------------------------------------------------------

  /** mmgrab(): keep the mm_struct (not its mappings) past exit, as an SVA domain does. */
  grab(): void {
    this.count++;
  }

  /** mmdrop(): the last reference runs __mmdrop: the drop hooks (mm_pasid_drop), then the pgd goes. */
  drop(): void {
    if (--this.count > 0) return;
    for (const h of this.dropHooks.splice(0)) h();
    this.pgtable.destroy();
  }

  /** Run `fn` when the mm is dropped (the iommu_mm data of iommu-sva.c hangs off the mm this way). */
  onDrop(fn: () => void): void {
    this.dropHooks.push(fn);
  }

  /** Every reference is gone: the mm_struct is freed. */
  get dropped(): boolean {
    return this.count === 0;
  }

  // --- mmap / munmap / mprotect -------------------------------------------

  /** Anonymous private mapping; returns the address or a negative errno. */
  mmap(length: number, prot: number, pageSize = PAGE, populate = false, where: Placement = {}): number {
    if (this.dead) return -EINVAL;
    if (!Number.isSafeInteger(length) || length <= 0) return -EINVAL;
    if (pageSize !== PAGE && pageSize !== MIB2 && pageSize !== GIB) return -EINVAL;
    if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) return -EINVAL;
    const len = Math.ceil(length / pageSize) * pageSize;
    const start = this.place(len, pageSize, where);
    if (start < 0) return start;
    this.insertVma({ start, end: start + len, prot, pageSize });
    if (populate) {
      for (let a = start; a < start + len; a += pageSize) {
        const r = this.faultIn(a, false);
        if (r < 0) {
          this.munmap(start, len);
          return r;
        }
      }
    }
    return start;
  }

  /**
   * A shared mapping of device memory (a driver's mmap: io_remap_pfn_range /
   * a PFNMAP fault handler): CPU accesses reach `io.phys` through the system
   * address space, nothing is pinnable (pin_user_pages refuses VM_IO and
   * VM_PFNMAP areas with -EFAULT). `make` builds the backing once the
   * address is chosen. Returns the address or a negative errno.
   */
  mmapIo(length: number, prot: number, make: (start: number) => VmaIo, where: Placement = {}): number {
    const [start, len] = this.placeMapping(length, prot, where);
    if (start < 0) return start;
    this.insertVma({ start, end: start + len, prot, pageSize: PAGE, io: make(start) });
    return start;
  }

  /** The checks every mmap of 4 KiB pages makes, then the address: [start or -errno, length rounded to pages]. */
  private placeMapping(length: number, prot: number, where: Placement): [number, number] {
    if (this.dead) return [-EINVAL, 0];
    if (!Number.isSafeInteger(length) || length <= 0) return [-EINVAL, 0];
    if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) return [-EINVAL, 0];
    const len = Math.ceil(length / PAGE) * PAGE;
    return [this.place(len, PAGE, where), len];
  }

  /**
   * A mapping of a file's pages (mmap of a memfd): MAP_SHARED maps the page
   * cache's pages themselves, MAP_PRIVATE reads them and copies on write.
   * `make` builds the file side once the address is chosen. Returns the
   * address or a negative errno.
   */
  mmapFile(length: number, prot: number, make: (start: number) => VmaFile, where: Placement = {}): number {
    const [start, len] = this.placeMapping(length, prot, where);
    if (start < 0) return start;
    const file = make(start);
    this.insertVma({ start, end: start + len, prot, pageSize: PAGE, file });
    file.cache.addMapper(this);
    return start;
  }

  /**
   * Choose the address of a new area of `len` bytes (get_unmapped_area):
   * MAP_FIXED takes `addr` as is, after __get_unmapped_area's checks in their
   * order (beyond TASK_SIZE -ENOMEM; hugetlb_get_unmapped_area: not aligned
   * to the huge page -EINVAL; not page aligned -EINVAL; below mmap_min_addr
   * -EPERM, cap_mmap_addr without CAP_SYS_RAWIO) and unmaps what was there,
   * as mmap_region does (cutting a huge page there is -EINVAL, as munmap).
   * A hint is used when the range is free (see below), otherwise the
   * search runs top down.
   */
  private place(len: number, align: number, where: Placement): number {
    const taskSize = this.opts.taskSize ?? TASK_SIZE_X86_64;
    const addr = where.addr;
    if (where.fixed === true) {
      // Page-aligned addresses up to 2^57 are exact numbers even past 2^53: those are past TASK_SIZE (-ENOMEM below).
      if (addr === undefined || !Number.isInteger(addr) || addr < 0) return -EINVAL;
      if (len > taskSize) return -ENOMEM;
      if (addr % align !== 0) return -EINVAL;
      if (addr > taskSize - len) return -ENOMEM;
      if (addr % PAGE !== 0) return -EINVAL;
      if (addr < this.opts.mmapMin) return -EPERM;
      const r = this.munmap(addr, len);
      return r < 0 ? r : addr;
    }
    if (addr !== undefined && Number.isSafeInteger(addr) && addr > 0) {
      // do_mmap's round_hint_to_min(): the hint is rounded down to its page and raised to
      // mmap_min_addr; hugetlb_get_unmapped_area() then aligns it up to the huge page. It is
      // taken when free anywhere below TASK_SIZE (generic_get_unmapped_area_topdown's mmap_end,
      // x86's mmap_address_hint_valid()), above mmap_base too.
      let hint = Math.max(Math.floor(addr / PAGE) * PAGE, this.opts.mmapMin);
      hint = Math.ceil(hint / align) * align;
      if (hint + len <= taskSize && !this.vmas.some((v) => overlaps(v, hint, hint + len))) return hint;
    }
    return this.findFree(len, align) ?? -ENOMEM;
  }

  /** Top-down search for a gap of `len` bytes aligned to `align`, as Linux's default mmap layout. */
  private findFree(len: number, align: number): number | undefined {
    const down = (a: number) => Math.floor(a / align) * align;
    let top = this.opts.mmapBase;
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const v = this.vmas[i]!;
      if (v.end < top) {
        const start = down(top - len);
        if (start >= v.end) return start;
      }
      top = Math.min(top, v.start);
    }
    const start = down(top - len);
    return start >= this.opts.mmapMin ? start : undefined;
  }

  private insertVma(v: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < v.start) i++;
    this.vmas.splice(i, 0, v);
  }

  munmap(addr: number, length: number): number {
    const range = this.checkRange(addr, length);
    if (typeof range === 'number') return range;
    const [start, end] = range;
    if (this.vmas.some((v) => overlaps(v, start, end) && cutsHugePage(v, start, end))) return -EINVAL;
    // Triples: the unit's VA, the head of its run, its size.
    const dropped: number[] = [];
    const ios = new Set<VmaIo>();
    const files = new Set<VmaFile>();
    for (const v of this.vmas) {
      if (!overlaps(v, start, end)) continue;
      if (v.io !== undefined) ios.add(v.io);
      if (v.file !== undefined) files.add(v.file);
    }
    this.reshape(start, end, (piece) => {
      for (let a = piece.start; a < piece.end; a += piece.pageSize) {
        const head = this.resident.get(a);
        if (head === undefined) continue;
        this.pgtable.unmap(a, piece.pageSize);
        this.resident.delete(a);
        this.cow.delete(a);
        dropped.push(a, head, piece.pageSize);
      }
      return undefined;
    });
    // Like Linux: clear PTEs, invalidate secondary TLBs, then free the pages.
    if (dropped.length > 0) for (const n of this.notifiers) n.invalidateRange(start, end);
    for (let i = 0; i < dropped.length; i += 3) {
      const head = dropped[i + 1]!;
      this.pages.put(head);
      this.residency?.unmapped(dropped[i]!, head, dropped[i + 2]!, this.pages.count(head) > 0);
    }
    // A file or I/O mapping whose last piece went lets go of its file.
    for (const io of ios) if (!this.vmas.some((v) => v.io === io)) io.release();
    for (const f of files) {
      if (this.vmas.some((v) => v.file === f)) continue;
      f.cache.removeMapper(this);
      f.release();
    }
    return 0;
  }

  mprotect(addr: number, length: number, prot: number): number {
    const range = this.checkRange(addr, length);
    if (typeof range === 'number') return range;
    if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) return -EINVAL;
    const [start, end] = range;
    // Every page of the range must be mapped (Linux: ENOMEM otherwise), before anything changes.
    let cursor = start;
    for (const v of this.vmas) {
      if (!overlaps(v, cursor, end)) continue;
      if (v.start > cursor) return -ENOMEM;
      if (cutsHugePage(v, start, end)) return -EINVAL;
      cursor = v.end;
    }
    if (cursor < end) return -ENOMEM;
    this.reshape(start, end, (piece) => {
      for (let a = piece.start; a < piece.end; a += piece.pageSize) {
        const head = this.resident.get(a);
        if (head === undefined) continue;
        this.pgtable.unmap(a, piece.pageSize);
        // A copy-on-write page stays write-protected whatever the area allows.
        const pteProt = this.cow.has(a) ? prot & ~PROT_WRITE : prot;
        if (pteProt !== PROT_NONE) this.pgtable.map(a, head, piece.pageSize, protToIommu(pteProt));
      }
      return { ...piece, prot };
    });
    for (const n of this.notifiers) n.invalidateRange(start, end);
    return 0;
  }

  /**
   * Cut [start, end) out of every area it overlaps: the parts outside stay,
   * each inside piece goes to `inside`, which returns its replacement (or
   * undefined to drop it).
   */
  private reshape(start: number, end: number, inside: (piece: Vma) => Vma | undefined): void {
    const next: Vma[] = [];
    for (const v of this.vmas) {
      if (!overlaps(v, start, end)) {
        next.push(v);
        continue;
      }
      if (v.start < start) next.push({ ...v, end: start });
      if (v.end > end) next.push({ ...v, start: end });
      const kept = inside({ ...v, start: Math.max(v.start, start), end: Math.min(v.end, end) });
      if (kept !== undefined) next.push(kept);
    }
    this.vmas = next.sort((a, b) => a.start - b.start);
  }

  private checkRange(addr: number, length: number): [number, number] | number {
    if (this.dead) return -EINVAL;
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(length) || addr % PAGE !== 0 || length <= 0) return -EINVAL;
    const end = addr + Math.ceil(length / PAGE) * PAGE;
    if (!Number.isSafeInteger(end)) return -EINVAL;
    return [addr, end];
  }

  // --- demand paging --------------------------------------------------------

  /**
   * Make the page at `addr` present for an access (the page-fault handler,
   * also used by I/O page faults on SVA). 0, -EFAULT for an address or access
   * the VMA forbids, -ENOMEM when no memory is left.
   */
  faultIn(addr: number, write: boolean, exec = false, unshare = false): number {
    if (this.dead) return -EFAULT;
    const v = this.findVma(addr);
    if (v === undefined) return -EFAULT;
    if (write ? (v.prot & PROT_WRITE) === 0 : exec ? (v.prot & PROT_EXEC) === 0 : (v.prot & PROT_READ) === 0) return -EFAULT;
    if (v.io !== undefined) return -EFAULT; // no struct page to pin or to hand an IOMMU fault
    const unit = Math.floor(addr / v.pageSize) * v.pageSize;
    const present = this.resident.get(unit);
    if (present !== undefined) return (write || unshare) && this.cow.has(unit) ? this.breakCow(unit, v, present) : 0;
    if (v.file !== undefined) return this.faultFile(unit, v, v.file, write || unshare);
    const head = this.pages.alloc(Math.log2(v.pageSize / PAGE));
    if (head === undefined) return -ENOMEM;
    const r = this.pgtable.map(unit, head, v.pageSize, protToIommu(v.prot));
    if (r < 0) {
      this.pages.put(head);
      return r;
    }
    this.resident.set(unit, head);
    this.residency?.mapped(unit, head, v.pageSize);
    return 0;
  }

  /**
   * A fault on a file mapping (shmem_fault, do_cow_fault): the page cache's
   * page at the unit's file index; a shared mapping maps it, a private one
   * maps it write-protected for a read and a copy of it for a write (or a
   * long-term pin). -EFAULT past the end of the file (SIGBUS).
   */
  private faultFile(unit: number, v: Vma, f: VmaFile, own: boolean): number {
    const cached = f.cache.page((unit - f.base + f.offset) / PAGE);
    if (cached < 0) return cached === -ENOMEM ? -ENOMEM : -EFAULT;
    let head = cached;
    let prot = v.prot;
    if (!f.shared && own) {
      const copy = this.pages.alloc(0);
      if (copy === undefined) return -ENOMEM;
      copyRun(this.mem, cached, copy, PAGE);
      head = copy;
    } else {
      this.pages.get(cached);
      if (!f.shared) prot &= ~PROT_WRITE;
    }
    const r = this.pgtable.map(unit, head, PAGE, protToIommu(prot));
    if (r < 0) {
      this.pages.put(head);
      return r;
    }
    this.resident.set(unit, head);
    if (!f.shared && !own) this.cow.add(unit);
    return 0;
  }

  /**
   * A write (or a long-term pin, gup_must_unshare) to a copy-on-write unit
   * (do_wp_page): a page nobody else references is reused in place
   * (wp_can_reuse_anon_folio); otherwise this mm gets a copy and lets go of
   * the shared page, after the secondary TLBs (SVA) forgot it.
   */
  private breakCow(unit: number, v: Vma, head: number): number {
    const size = v.pageSize;
    if (this.pages.count(head) === 1) {
      this.cow.delete(unit);
      this.pgtable.unmap(unit, size);
      this.pgtable.map(unit, head, size, protToIommu(v.prot));
      for (const n of this.notifiers) n.invalidateRange(unit, unit + size);
      return 0;
    }
    const fresh = this.pages.alloc(Math.log2(size / PAGE));
    if (fresh === undefined) return -ENOMEM;
    copyRun(this.mem, head, fresh, size);
    this.pgtable.unmap(unit, size);
    const r = this.pgtable.map(unit, fresh, size, protToIommu(v.prot));
    if (r < 0) {
      this.pgtable.map(unit, head, size, protToIommu(v.prot & ~PROT_WRITE));
      this.pages.put(fresh);
      return r;
    }
    this.resident.set(unit, fresh);
    this.cow.delete(unit);
    for (const n of this.notifiers) n.invalidateRange(unit, unit + size);
    this.pages.put(head);
    return 0;
  }

  /**
   * unmap_mapping_range(even_cows) for a truncated file: every unit of this
   * mm mapping file pages from `fromIndex` on goes, private copies included.
   */
  zapFile(cache: PageCache, fromIndex: number): void {
    const dropped: number[] = [];
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of this.vmas) {
      const f = v.file;
      if (f?.cache !== cache) continue;
      for (let a = v.start; a < v.end; a += PAGE) {
        if ((a - f.base + f.offset) / PAGE < fromIndex) continue;
        const head = this.resident.get(a);
        if (head === undefined) continue;
        this.pgtable.unmap(a, PAGE);
        this.resident.delete(a);
        this.cow.delete(a);
        dropped.push(head);
        lo = Math.min(lo, a);
        hi = Math.max(hi, a + PAGE);
      }
    }
    if (dropped.length > 0) for (const n of this.notifiers) n.invalidateRange(lo, hi);
    for (const head of dropped) this.pages.put(head);
  }

  /** The physical address of `addr` if its page is present, else -1. */
  physOf(addr: number): number {
    const v = this.findVma(addr);
    if (v === undefined) return -1;
    const unit = Math.floor(addr / v.pageSize) * v.pageSize;
    const head = this.resident.get(unit);
    return head === undefined ? -1 : head + (addr - unit);
  }

  /** Head of the page run backing `addr`, if present. */
  headOf(addr: number): number | undefined {
    const v = this.findVma(addr);
    if (v === undefined) return undefined;
    return this.resident.get(Math.floor(addr / v.pageSize) * v.pageSize);
  }

  /**
   * follow_fault_pfn() on a VM_PFNMAP area (a BAR mmap), for VFIO's
   * vaddr_get_pfns: the physical address behind `addr` and the pages from it to
   * the end of its area (all physically contiguous). The fault is taken as
   * fixup_user_fault does: the access must be one the area permits (VM_WRITE
   * for a write, VM_READ otherwise) and the driver's fault handler must not
   * refuse (vfio-pci's SIGBUS with memory decoding off): -EFAULT otherwise.
   * undefined when `addr` is not in an I/O mapping (the caller pins instead).
   */
  followIoPfn(addr: number, write: boolean): { pa: number; pages: number } | number | undefined {
    if (this.dead) return undefined;
    const v = this.findVma(addr);
    const io = v?.io;
    if (io === undefined) return undefined;
    if ((v!.prot & (write ? PROT_WRITE : PROT_READ)) === 0 || !io.accessible()) return -EFAULT;
    const page = addr - (addr % PAGE);
    return { pa: io.phys + (page - io.base), pages: (v!.end - page) / PAGE };
  }

  /**
   * How many of `count` pages from `addr` precede the first I/O mapping: what
   * pin_user_pages pins before GUP's check_vma_flags refuses a VM_IO|VM_PFNMAP
   * area (it returns the partial count, or -EFAULT when that is 0).
   */
  pagesBeforeIo(addr: number, count: number): number {
    const end = addr + count * PAGE;
    for (const v of this.vmas) {
      if (v.io === undefined || v.end <= addr || v.start >= end) continue;
      return Math.max(0, (v.start - addr) / PAGE);
    }
    return count;
  }

  /** Pages resident now (in 4 KiB units). */
  get residentPages(): number {
    let n = 0;
    for (const va of this.resident.keys()) n += (this.findVma(va)?.pageSize ?? PAGE) / PAGE;
    return n;
  }

  // --- CPU accesses ---------------------------------------------------------

  /** The process's own load/store: faults pages in; -EFAULT where it would SIGSEGV. */
  access(addr: number, buf: Uint8Array, write: boolean): number {
    if (!Number.isSafeInteger(addr) || addr < 0) return -EFAULT;
    let done = 0;
    while (done < buf.length) {
      const a = addr + done;
      const n = Math.min(buf.length - done, PAGE - (a % PAGE));
      // A page already present needs no fault: one lookup (copy_from_user/copy_to_user of an ioctl struct, the common case).
      let pa = this.presentPhys(a, write);
      if (pa < 0) {
        const r = this.faultIn(a, write);
        if (r < 0) {
          if (r === -ENOMEM) return r;
          if (this.ioAccess(a, buf.subarray(done, done + n), write) < 0) return -EFAULT;
          done += n;
          continue;
        }
        pa = this.physOf(a);
      }
      const chunk = buf.subarray(done, done + n);
      if (write) this.mem.writeFrom(pa, chunk);
      else this.mem.readInto(pa, chunk);
      done += n;
    }
    return 0;
  }

  /**
   * The physical address behind `addr` when its page is present in an area
   * the access may touch, else -1 (take the fault path). A write takes this
   * path only on a page nobody else references (a shared or pinned page goes
   * through faultIn, where a copy-on-write break would belong).
   */
  private presentPhys(addr: number, write: boolean): number {
    const v = this.findVma(addr);
    if (v === undefined || v.io !== undefined || (v.prot & (write ? PROT_WRITE : PROT_READ)) === 0) return -1;
    const unit = v.pageSize === PAGE ? addr - (addr % PAGE) : Math.floor(addr / v.pageSize) * v.pageSize;
    const head = this.resident.get(unit);
    if (head === undefined || (write && this.pages.count(head) !== 1)) return -1;
    return head + (addr - unit);
  }

  /** A CPU load/store to an I/O mapping: it reaches the device through the system address space, or faults (SIGBUS: -EFAULT here). */
  private ioAccess(addr: number, chunk: Uint8Array, write: boolean): number {
    const v = this.findVma(addr);
    const io = v?.io;
    if (io === undefined || (v!.prot & (write ? PROT_WRITE : PROT_READ)) === 0 || !io.accessible()) return -EFAULT;
    const pa = io.phys + (addr - io.base);
    const r = write ? this.mem.writeFrom(pa, chunk) : this.mem.readInto(pa, chunk);
    return r === 0 ? 0 : -EFAULT;
  }

  // --- fork ---------------------------------------------------------------------

  /** dup_mmap() for fork (mm-fork.ts): a copy-on-write copy of this mm over `pgtable`, or -errno. */
  fork(pgtable: PageTableBuilder, dup: ForkDup): Mm | number {
    return forkMm(this, pgtable, dup);
  }

  /** What mm-fork.ts copies: this mm's areas and page state. Not for other callers. */
  forkState(): { vmas: Vma[]; resident: ResidentTable; cow: Set<number>; notifiers: ReadonlySet<MmuNotifier>; opts: MmOptions } {
    return { vmas: this.vmas, resident: this.resident, cow: this.cow, notifiers: this.notifiers, opts: this.opts };
  }

  // --- teardown ---------------------------------------------------------------

  /**
   * The last user goes (mmput -> exit_mmap): notifiers are released, every
   * mapping dropped; then the users' mm_count reference: the page table
   * itself goes when nothing else holds the mm (mmdrop -> __mmdrop).
   */
  teardown(): void {
    if (this.dead) return;
    for (const n of [...this.notifiers]) n.release();
    this.notifiers.clear();
    for (const v of [...this.vmas]) this.munmap(v.start, v.end - v.start);
    this.dead = true;
    this.drop();
  }
}

function overlaps(v: Vma, start: number, end: number): boolean {
  return v.end > start && v.start < end;
}

/** Huge-page areas can only be cut at their page size (hugetlb's rule). */
function cutsHugePage(v: Vma, start: number, end: number): boolean {
  if (v.pageSize === PAGE) return false;
  return (start > v.start && start % v.pageSize !== 0) || (end < v.end && end % v.pageSize !== 0);
}

export function protToIommu(prot: number): number {
  let p = IOMMU_CACHE;
  if (prot & PROT_READ) p |= IOMMU_READ;
  if (prot & PROT_WRITE) p |= IOMMU_WRITE | IOMMU_READ;
  if ((prot & PROT_EXEC) === 0) p |= IOMMU_NOEXEC;
  return p;
}
