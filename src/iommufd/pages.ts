/**
 * Pinned user pages and the areas that map them (the role of
 * drivers/iommu/iommufd/pages.c and struct iopt_area): a pages object is a
 * user VA range shared by every area mapping part of it, pinned and charged
 * page by page while an area covering the page sits in an IOAS with a domain.
 */
import { EFAULT, EINVAL, ENOMEM } from '../uapi/errno.ts';
import { accountLockedVm, physicalRuns, pinUserPages, unpinPageHeads, unpinUserPages, type PinnedPages } from '../host/pin.ts';
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

/** Pages per chunk of per-page state (2 MiB of user VA); a smaller object has one chunk of its own size. */
const CHUNK_PAGES = 512;
/**
 * Most pages one pin_user_pages() call takes: a longer run of unpinned pages
 * is pinned in several calls, so a range far larger than memory (IOAS_MAP
 * takes up to SIZE_MAX - PAGE_SIZE bytes, and pins nothing while no domain
 * needs the pages) fails at its first missing page instead of first making
 * arrays for all of it (pfn_reader_user_pin() pins a batch at a time too).
 */
const PIN_BATCH = 2 ** 20;

/** The pinned state of a chunk's pages, made when one of them is first pinned. */
interface PageChunk {
  readonly pas: Float64Array;
  /** Each page's run (pin.ts): what its unpin drops a reference on. */
  readonly heads: Float64Array;
  /** Areas in IOASes with domains covering each page. */
  readonly pins: Uint32Array;
  /** Pages of the chunk with a pin count; the chunk goes with the last. */
  used: number;
}

/**
 * A user VA range to be pinned (struct iopt_pages): shared by every area that
 * maps part of it (a COPY, or the two halves of a split). Each page is pinned
 * once, while at least one area covering it sits in an IOAS with a domain
 * (pages.c's domains_itree), and charged once when pinned: to the user
 * (IOPT_PAGES_ACCOUNT_USER, user->locked_vm), to the mm
 * (IOPT_PAGES_ACCOUNT_MM, mm->locked_vm) or not at all (CAP_IPC_LOCK);
 * mm->pinned_vm counts the pins in every mode (do_update_pinned()). Like the
 * kernel's xarray of pinned pfns, it keeps state only for pinned pages, in
 * chunks: a range of any size costs nothing until its pages are pinned.
 */
export class Pages {
  /** Page-aligned first VA. */
  readonly va: number;
  /** Pages the range spans. */
  readonly count: number;
  private readonly chunks = new Map<number, PageChunk>();
  /** Pages per chunk: CHUNK_PAGES, or the whole object when it is smaller (a 4 KiB map keeps 3 numbers, not 10 KiB). */
  private readonly chunkPages: number;
  /** The chunk last looked up (pages are walked in order: one map lookup per chunk, not per page). */
  private lastQ = -1;
  private lastChunk: PageChunk | undefined;
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
    this.chunkPages = Math.max(1, Math.min(CHUNK_PAGES, this.count));
  }

  /** The chunk of pages [q * chunkPages, (q + 1) * chunkPages), if any page of it is pinned or being stored. */
  private chunkAt(q: number): PageChunk | undefined {
    if (q !== this.lastQ) {
      this.lastQ = q;
      this.lastChunk = this.chunks.get(q);
    }
    return this.lastChunk;
  }

  /** Areas with domains covering page `index` (0: not pinned). */
  pinCount(index: number): number {
    const q = Math.floor(index / this.chunkPages);
    const c = this.chunkAt(q);
    return c === undefined ? 0 : c.pins[index - q * this.chunkPages]!;
  }

  /** The physical address of pinned page `index`. */
  pa(index: number): number {
    const q = Math.floor(index / this.chunkPages);
    const c = this.chunkAt(q);
    if (c === undefined || c.pins[index - q * this.chunkPages] === 0) throw new Error(`iommufd: page ${index} of a pages object is not pinned`);
    return c.pas[index - q * this.chunkPages]!;
  }

  /** Each pinned page: its index, physical address and run (pin.ts), chunk by chunk. */
  forEachPinned(fn: (index: number, pa: number, head: number) => void): void {
    for (const [q, c] of this.chunks) {
      for (let k = 0; k < this.chunkPages; k++) if (c.pins[k] !== 0) fn(q * this.chunkPages + k, c.pas[k]!, c.heads[k]!);
    }
  }

  /** Pinned pages [from, from+n) as physically contiguous runs: [first page index, page count]. */
  contiguousRuns(from: number, n: number): [number, number][] {
    return physicalRuns(from, n, (i) => this.pa(i));
  }

  get pinned(): boolean {
    return this.npinned > 0;
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
    const done: PinnedPages[] = [];
    let fresh = 0;
    let rc = 0;
    // Each run of unpinned pages (up to PIN_BATCH of them) in one pin, stopping at the first that fails.
    for (let i = from; i < from + n;) {
      if (this.pinCount(i) !== 0) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < from + n && j - i < PIN_BATCH && this.pinCount(j) === 0) j++;
      if (this.failAt('iommufd.pin')) {
        rc = -EFAULT;
        break;
      }
      const p = this.source.kind === 'file' ? this.pinFile(i, j - i) : pinUserPages(this.proc.mm, this.va + i * PAGE, j - i, this.writable);
      if (typeof p === 'number') {
        rc = p === -ENOMEM || p === -EINVAL ? p : -EFAULT;
        break;
      }
      done.push(p);
      fresh += j - i;
      i = j;
    }
    // Changes in the pinned count are charged after the pages are read (pfn_reader_user_update_pinned()).
    if (rc === 0 && fresh > 0) rc = this.failAt('iommufd.account') ? -ENOMEM : this.charge(fresh);
    if (rc < 0) {
      for (const p of done) unpinUserPages(this.proc.mm, p);
      return rc;
    }
    for (const p of done) this.store((p.va - this.va) / PAGE, p);
    for (let i = from; i < from + n; i++) {
      const c = this.chunkOf(i);
      const k = i - Math.floor(i / this.chunkPages) * this.chunkPages;
      if (c.pins[k]++ === 0) c.used++;
    }
    this.npinned += fresh;
    return 0;
  }

  /** The chunk holding page `index`, made if need be. */
  private chunkOf(index: number): PageChunk {
    const q = Math.floor(index / this.chunkPages);
    let c = this.chunkAt(q);
    if (c === undefined) {
      c = { pas: new Float64Array(this.chunkPages), heads: new Float64Array(this.chunkPages), pins: new Uint32Array(this.chunkPages), used: 0 };
      this.chunks.set(q, c);
      this.lastChunk = c;
    }
    return c;
  }

  /** Keep where the pages of a pin starting at page `first` are. */
  private store(first: number, p: PinnedPages): void {
    for (let k = 0; k < p.count; k++) {
      const i = first + k;
      const c = this.chunkOf(i);
      const at = i - Math.floor(i / this.chunkPages) * this.chunkPages;
      c.pas[at] = p.pas[k]!;
      c.heads[at] = p.heads[k]!;
    }
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
    // A run of pages to unpin, within one chunk (their heads are consecutive there).
    let run: PageChunk | undefined;
    let runAt = 0;
    let runLen = 0;
    const flush = (): void => {
      if (run === undefined) return;
      unpinPageHeads(this.proc.mm, run.heads, runAt, runLen);
      freed += runLen;
      run = undefined;
    };
    for (let i = from; i < from + n; i++) {
      const q = Math.floor(i / this.chunkPages);
      const c = this.chunkAt(q);
      const k = i - q * this.chunkPages;
      const pins = c === undefined ? 0 : c.pins[k]!;
      if (pins === 1) {
        if (run !== c) {
          flush();
          run = c;
          runAt = k;
          runLen = 0;
        }
        runLen++;
      } else {
        flush();
      }
      if (c === undefined || pins === 0) continue;
      c.pins[k] = pins - 1;
      if (pins === 1 && --c.used === 0) {
        // The chunk's last pinned page: the chunk goes (a run still to flush holds it, with its heads).
        this.chunks.delete(q);
        this.lastQ = -1;
      }
    }
    flush();
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
