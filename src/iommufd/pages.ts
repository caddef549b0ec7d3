/**
 * Pinned user pages and the areas that map them (the role of
 * drivers/iommu/iommufd/pages.c and struct iopt_area): a pages object is a
 * user VA range shared by every area mapping part of it, pinned and charged
 * page by page while an area covering the page sits in an IOAS with a domain.
 */
import { EFAULT, EINVAL, ENOMEM } from '../uapi/errno.ts';
import { accountLockedVm, pinUserPages, unpinUserPages, type PinnedPages } from '../host/pin.ts';
import type { Process } from '../host/process.ts';
import type { OpenFile } from '../host/vfs.ts';
import type { FaultInjector } from '../fault/injector.ts';
import { injectedErrno, type IommufdInjectionPointName } from './points.ts';
import type { IntervalNode } from '../lib/interval-tree.ts';

export const PAGE = 4096;
/** HPAGE_SIZE (PMD size with 4K pages): the largest IOVA alignment the allocator chooses. */
export const HPAGE = 2 ** 21;
/**
 * The highest IOVA this emulator represents (IOVAs are JS numbers inside):
 * the kernel's ULONG_MAX stands here for 2^53 - 1.
 */
export const IOVA_MAX = Number.MAX_SAFE_INTEGER;

export type AccountMode = 'none' | 'user' | 'mm';

/**
 * Where the pages come from (iopt_pages->type): the mapping process's memory
 * (IOPT_ADDRESS_USER, pinned with pin_user_pages), or a file
 * (IOPT_ADDRESS_FILE: IOMMU_IOAS_MAP_FILE; pinned from the page cache with
 * memfd_pin_folios, the pages object holding the file).
 */
export type PagesSource = { kind: 'user' } | { kind: 'file'; file: OpenFile; release(): void };

/**
 * A user VA range to be pinned (struct iopt_pages): shared by every area that
 * maps part of it (a COPY, or the two halves of a split). Each page is pinned
 * once, while at least one area covering it sits in an IOAS with a domain
 * (pages.c's domains_itree), and charged once when pinned: to the user
 * (IOPT_PAGES_ACCOUNT_USER, user->locked_vm), to the mm
 * (IOPT_PAGES_ACCOUNT_MM, mm->locked_vm) or not at all (CAP_IPC_LOCK);
 * mm->pinned_vm counts the pins in every mode (do_update_pinned()).
 */
export class Pages implements PinnedPages {
  /** Page-aligned first VA. */
  readonly va: number;
  readonly count: number;
  readonly pas: Float64Array;
  readonly heads: Float64Array;
  /** Areas in IOASes with domains covering each page. */
  private readonly pinCounts: Uint32Array;
  /** Pages pinned now (pages->npinned). */
  npinned = 0;
  /** Areas referencing the object at all. */
  areaRefs = 0;

  constructor(
    /**
     * The process the pages are charged to and pinned for (pages->source_task,
     * source_mm, source_user); IOMMU_IOAS_CHANGE_PROCESS moves it.
     */
    public proc: Process,
    /** The user address as given (iopt_pages.uptr), or for a file the byte offset in it. */
    readonly uptr: number,
    readonly length: number,
    readonly writable: boolean,
    readonly accountMode: AccountMode,
    /** The machine's injection points ('iommufd.pin', 'iommufd.account'), if any. */
    private readonly faults?: FaultInjector,
    readonly source: PagesSource = { kind: 'user' },
  ) {
    this.va = uptr - (uptr % PAGE);
    this.count = Math.ceil((uptr + length - this.va) / PAGE);
    this.pas = new Float64Array(this.count);
    this.heads = new Float64Array(this.count);
    this.pinCounts = new Uint32Array(this.count);
  }

  get pinned(): boolean {
    return this.npinned > 0;
  }

  isPinned(index: number): boolean {
    return this.pinCounts[index]! > 0;
  }

  /** Runs [first, n] of pages in [from, from+n) whose pin count is `want` (0: not pinned yet). */
  private runsAt(from: number, n: number, want: number): [number, number][] {
    const out: [number, number][] = [];
    let i = from;
    while (i < from + n) {
      if (this.pinCounts[i] !== want) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < from + n && this.pinCounts[j] === want) j++;
      out.push([i, j - i]);
      i = j;
    }
    return out;
  }

  /** The last area let go of the pages: a file's pages object lets go of the file (iopt_release_pages). */
  released(): void {
    if (this.source.kind === 'file') this.source.release();
  }

  private charge(npages: number): number {
    if (this.accountMode === 'user') return this.proc.user.charge(npages, this.proc.memlockLimit);
    // IOPT_PAGES_ACCOUNT_MM: __account_locked_vm() on the mm, as VFIO charges.
    if (this.accountMode === 'mm') return accountLockedVm(this.proc, npages, true);
    return 0;
  }

  private uncharge(npages: number): void {
    if (this.accountMode === 'user') this.proc.user.uncharge(npages);
    else if (this.accountMode === 'mm') accountLockedVm(this.proc, npages, false);
  }

  /**
   * Take a pin reference on pages [from, from+n): pages not pinned yet are
   * pinned and charged. All or nothing: 0, or -errno with nothing changed.
   */
  pinRange(from: number, n: number): number {
    const todo = this.runsAt(from, n, 0);
    const fresh = todo.reduce((s, [, k]) => s + k, 0);
    const done: [number, number][] = [];
    let rc = 0;
    for (const [i, k] of todo) {
      if (this.failAt('iommufd.pin')) {
        rc = -EFAULT;
        break;
      }
      const p = this.source.kind === 'file' ? this.pinFile(i, k) : pinUserPages(this.proc.mm, this.va + i * PAGE, k, this.writable);
      if (typeof p === 'number') {
        rc = p === -ENOMEM || p === -EINVAL ? p : -EFAULT;
        break;
      }
      this.pas.set(p.pas, i);
      this.heads.set(p.heads, i);
      done.push([i, k]);
    }
    // Changes in the pinned count are charged after the pages are read (pfn_reader_user_update_pinned()).
    if (rc === 0 && fresh > 0) rc = this.failAt('iommufd.account') ? -ENOMEM : this.charge(fresh);
    if (rc < 0) {
      for (const [i, k] of done) unpinUserPages(this.proc.mm, this, i, k);
      return rc;
    }
    for (let i = from; i < from + n; i++) this.pinCounts[i]!++;
    this.npinned += fresh;
    return 0;
  }

  /**
   * pin_memfd_pages() -> memfd_pin_folios(): pages [i, i+k) of the file from
   * its page cache, allocated there if need be; a file that is no memfd, or
   * a range reaching past its size, is -EINVAL. Counted in the source mm's
   * pinned_vm as iommufd does for every pin.
   */
  private pinFile(i: number, k: number): PinnedPages | number {
    const cache = this.source.kind === 'file' ? this.source.file.pageCache : undefined;
    if (cache === undefined) return -EINVAL;
    const start = this.va + i * PAGE;
    if (start + k * PAGE - 1 >= cache.size) return -EINVAL;
    const mm = this.proc.mm;
    const pas = new Float64Array(k);
    for (let j = 0; j < k; j++) {
      const head = cache.page(start / PAGE + j);
      if (head < 0) {
        for (let u = 0; u < j; u++) mm.pages.unpin(pas[u]!);
        return head === -ENOMEM ? -ENOMEM : -EINVAL;
      }
      mm.pages.pin(head);
      pas[j] = head;
    }
    mm.pinnedVm += k;
    return { va: start, count: k, pas, heads: pas };
  }

  /** Drop a pin reference on pages [from, from+n): pages no area needs any more are unpinned and uncharged. */
  unpinRange(from: number, n: number): void {
    let freed = 0;
    let run = -1;
    const flush = (end: number): void => {
      if (run < 0) return;
      unpinUserPages(this.proc.mm, this, run, end - run);
      freed += end - run;
      run = -1;
    };
    for (let i = from; i < from + n; i++) {
      const c = this.pinCounts[i]!;
      if (c === 1) {
        this.pinCounts[i] = 0;
        if (run < 0) run = i;
      } else {
        flush(i);
        if (c > 1) this.pinCounts[i] = c - 1;
      }
    }
    flush(from + n);
    if (freed > 0) {
      this.uncharge(freed);
      this.npinned -= freed;
    }
  }

  private failAt(point: IommufdInjectionPointName): boolean {
    return this.faults !== undefined && injectedErrno(this.faults, point, ENOMEM, { va: this.va }) < 0;
  }
}

/** A mapped IOVA range (struct iopt_area). */
export class Area {
  node: IntervalNode<Area> | undefined;
  constructor(
    readonly iova: number,
    readonly length: number,
    readonly pages: Pages,
    /** Byte offset of the area's first byte from pages.va. */
    readonly startByte: number,
    readonly prot: number,
  ) {}

  get last(): number {
    return this.iova + this.length - 1;
  }
  get firstPage(): number {
    return Math.floor(this.startByte / PAGE);
  }
  get npages(): number {
    return Math.ceil((this.startByte + this.length) / PAGE) - this.firstPage;
  }
}
