import type { PageAllocator } from './page-allocator.ts';
import { PAGE_SIZE } from '../memory/phys-mem.ts';
import { PfnTable } from './pfn-table.ts';

/**
 * Reference counts of allocated page runs (the `struct page` refcount of
 * their head): a mapping in a process holds one, every pin holds one, and the
 * run goes back to the allocator when the last is dropped. This is what lets
 * a pinned page outlive munmap or process exit until its pinner lets go.
 */
export class PageRefs {
  /** References of each live run, by its head's frame number (0: not allocated here). */
  private readonly refs = new PfnTable();
  private runs = 0;
  /** How many of a run's references are pins (FOLL_PIN: what folio_maybe_dma_pinned() asks). */
  private readonly pins = new Map<number, number>();

  constructor(private readonly allocator: PageAllocator) {}

  /** Allocate a run of 2^order pages holding one reference. */
  alloc(order: number): number | undefined {
    const pa = this.allocator.allocPages(order);
    if (pa !== undefined) {
      this.refs.set(pa / PAGE_SIZE, 1);
      this.runs++;
    }
    return pa;
  }

  /** Take `count` references (a pin of `count` pages of one run takes one each). */
  get(head: number, count = 1): void {
    const n = this.refs.get(head / PAGE_SIZE);
    if (n === 0) throw new Error(`get of unreferenced page run 0x${head.toString(16)}`);
    this.refs.set(head / PAGE_SIZE, n + count);
  }

  put(head: number, count = 1): void {
    const n = this.refs.get(head / PAGE_SIZE);
    if (n === 0 || n < count) throw new Error(`put of unreferenced page run 0x${head.toString(16)}`);
    if (n > count) {
      this.refs.set(head / PAGE_SIZE, n - count);
      return;
    }
    this.refs.set(head / PAGE_SIZE, 0);
    this.runs--;
    this.allocator.freePages(head);
  }

  count(head: number): number {
    return this.refs.get(head / PAGE_SIZE);
  }

  /** pin_user_pages' reference on `count` pages of a run: counted as pins too. */
  pin(head: number, count = 1): void {
    this.get(head, count);
    this.pins.set(head, (this.pins.get(head) ?? 0) + count);
  }

  /** unpin_user_pages(). */
  unpin(head: number, count = 1): void {
    const n = (this.pins.get(head) ?? 0) - count;
    if (n < 0) throw new Error(`unpin of unpinned page run 0x${head.toString(16)}`);
    if (n === 0) this.pins.delete(head);
    else this.pins.set(head, n);
    this.put(head, count);
  }

  /** Pins held on a run now. */
  pinned(head: number): number {
    return this.pins.get(head) ?? 0;
  }

  /** Page runs alive now. */
  get liveRuns(): number {
    return this.runs;
  }
}
