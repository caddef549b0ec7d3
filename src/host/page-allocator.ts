import type { FaultInjector, InjectionPoint } from '../fault/injector.ts';
import { HOST_INJECTION_POINTS } from './points.ts';
import { PAGE_SHIFT, PAGE_SIZE } from '../memory/phys-mem.ts';
import { PfnTable } from './pfn-table.ts';

/** Orders the host hands out: 4 KiB pages up to 1 GiB runs (order 18). */
export const MAX_ORDER = 18;
export const ORDER_2M = 9;
export const ORDER_1G = 18;
/** Free-list links per chunk of 2^10 frames: the lists start with one run per 1 GiB, sparse over a large machine. */
const FREE_CHUNK_BITS = 10;

export interface RamSpan {
  /** Physical address of the span (page aligned). */
  gpa: number;
  size: number;
}

/**
 * The free runs of one order, oldest first: a list through per-frame links
 * (the role of the page's lru list_head in Linux's free_area lists). The
 * order of a Set, which it replaces: a run added goes last, the first is the
 * oldest still there. Not a Set: the order-0 list goes empty and back on
 * every other page allocated, and V8 reallocates a Set's table when it empties.
 */
class FreeList {
  head = -1;
  tail = -1;
}

/**
 * The host's physical page allocator: a buddy allocator over the machine's
 * RAM, as Linux's page allocator is. It hands out single pages and naturally
 * aligned, physically contiguous runs of 2^order pages (2 MiB and 1 GiB runs
 * back huge pages), merges buddies on free, and counts the pages in use so a
 * leak is testable. Freed memory is returned to the board (`zero`), so the
 * next owner reads zeros and a sparse RAM gives the frames back.
 */
export class PageAllocator {
  private readonly free: FreeList[] = [];
  /** Per free run's first frame: 1 + its order (0: not a free run's head). */
  private readonly freeOrder = new PfnTable(FREE_CHUNK_BITS);
  /** Per free run's first frame: 1 + the previous and the next run's frame on its list (0: none). */
  private readonly freePrev = new PfnTable(FREE_CHUNK_BITS);
  private readonly freeNext = new PfnTable(FREE_CHUNK_BITS);
  /** 1 + the order of each live allocation, by its first frame (0: none starts there). */
  private readonly allocated = new PfnTable();
  private inUse = 0;
  private total = 0;
  private readonly zero: (pa: number, bytes: number) => void;
  private readonly failPoint: InjectionPoint | undefined;

  constructor(spans: readonly RamSpan[], zero: (pa: number, bytes: number) => void, faults?: FaultInjector) {
    for (let o = 0; o <= MAX_ORDER; o++) this.free.push(new FreeList());
    this.zero = zero;
    this.failPoint = faults?.define(HOST_INJECTION_POINTS)['host.page_alloc'];
    for (const s of spans) this.addSpan(s);
  }

  private addSpan(s: RamSpan): void {
    let pfn = Math.ceil(s.gpa / PAGE_SIZE);
    const end = Math.floor((s.gpa + s.size) / PAGE_SIZE);
    while (pfn < end) {
      let order = MAX_ORDER;
      while (order > 0 && (pfn % 2 ** order !== 0 || pfn + 2 ** order > end)) order--;
      this.addFree(order, pfn);
      this.total += 2 ** order;
      pfn += 2 ** order;
    }
  }

  /** Pages currently allocated (the leak check). */
  get pagesInUse(): number {
    return this.inUse;
  }

  get totalPages(): number {
    return this.total;
  }

  get freePageCount(): number {
    return this.total - this.inUse;
  }

  /** Allocate 2^order contiguous, naturally aligned, zeroed pages; undefined when none (ENOMEM). */
  allocPages(order: number): number | undefined {
    if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER) return undefined;
    const fp = this.failPoint;
    // The context object only when a hook will read it (a page per PRI fault comes through here).
    if (fp !== undefined && fp.check(fp.armed ? { order } : undefined) !== undefined) return undefined;
    let o = order;
    while (o <= MAX_ORDER && this.free[o]!.head < 0) o++;
    if (o > MAX_ORDER) return undefined;
    const pfn = this.free[o]!.head;
    this.deleteFree(o, pfn);
    // Split down, returning the upper halves to the free lists.
    while (o > order) {
      o--;
      this.addFree(o, pfn + 2 ** o);
    }
    this.allocated.set(pfn, order + 1);
    this.inUse += 2 ** order;
    return pfn * PAGE_SIZE;
  }

  allocPage(): number | undefined {
    return this.allocPages(0);
  }

  /** Free a run exactly as it was allocated. Freeing anything else is a kernel bug: it throws. */
  freePages(pa: number, order?: number): void {
    const pfn = pa / PAGE_SIZE;
    const o = this.orderOf(pa);
    if (o === undefined || (order !== undefined && order !== o)) {
      throw new Error(`bad page free at 0x${pa.toString(16)} order ${order} (allocated order ${o})`);
    }
    this.allocated.set(pfn, 0);
    this.inUse -= 2 ** o;
    this.zero(pa, PAGE_SIZE * 2 ** o);
    let p = pfn;
    let ord = o;
    while (ord < MAX_ORDER) {
      const size = 2 ** ord;
      // Arithmetic, not XOR: frame numbers exceed 32 bits on large machines.
      const buddy = Math.floor(p / size) % 2 === 0 ? p + size : p - size;
      if (!this.deleteFree(ord, buddy)) break;
      p = Math.min(p, buddy);
      ord++;
    }
    this.addFree(ord, p);
  }

  /** Put the run at `pfn` last on the order-`o` list (it is on none). */
  private addFree(o: number, pfn: number): void {
    const l = this.free[o]!;
    this.freeOrder.set(pfn, o + 1);
    this.freePrev.set(pfn, l.tail + 1);
    this.freeNext.set(pfn, 0);
    if (l.tail >= 0) this.freeNext.set(l.tail, pfn + 1);
    else l.head = pfn;
    l.tail = pfn;
  }

  /** Take the run at `pfn` off the order-`o` list; false if it is not on it. */
  private deleteFree(o: number, pfn: number): boolean {
    if (this.freeOrder.get(pfn) !== o + 1) return false;
    const l = this.free[o]!;
    const prev = this.freePrev.get(pfn) - 1;
    const next = this.freeNext.get(pfn) - 1;
    if (prev >= 0) this.freeNext.set(prev, next + 1);
    else l.head = next;
    if (next >= 0) this.freePrev.set(next, prev + 1);
    else l.tail = prev;
    this.freeOrder.set(pfn, 0);
    this.freePrev.set(pfn, 0);
    this.freeNext.set(pfn, 0);
    return true;
  }

  freePage(pa: number): void {
    this.freePages(pa, 0);
  }

  /** The order a live allocation at `pa` was made with, or undefined. */
  orderOf(pa: number): number | undefined {
    const v = this.allocated.get(pa / PAGE_SIZE);
    return v === 0 ? undefined : v - 1;
  }

  /** An allocator view by byte size, for page-table builders (sizes are powers of two >= 4 KiB). */
  tablePages(): { alloc(bytes: number): number | undefined; free(pa: number, bytes: number): void } {
    return {
      alloc: (bytes) => this.allocPages(orderFor(bytes)),
      free: (pa, bytes) => this.freePages(pa, orderFor(bytes)),
    };
  }
}

export function orderFor(bytes: number): number {
  return Math.max(0, Math.ceil(Math.log2(bytes)) - PAGE_SHIFT);
}

