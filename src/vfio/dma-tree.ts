/**
 * The type1 DMA list (vfio_iommu.dma_list, an rbtree in Linux): disjoint
 * [iova, iova+size) ranges ordered by iova, kept in the shared interval tree
 * (src/lib/interval-tree.ts) and looked up the way vfio_iommu_type1.c does.
 * A range's iova and size must not change while it is in the list.
 */
import { IntervalTree } from '../lib/interval-tree.ts';

export interface IovaRange {
  iova: number;
  size: number;
}

export class DmaTree<T extends IovaRange> {
  private readonly tree = new IntervalTree<T>();

  get size(): number {
    return this.tree.size;
  }

  /** Link a range that overlaps nothing in the tree (the caller checked with find()). */
  insert(item: T): void {
    this.tree.insert(item.iova, item.iova + item.size - 1, item);
  }

  /** Unlink `item`; false when it is not in the tree. */
  remove(item: T): boolean {
    const n = this.tree.firstOverlap(item.iova, item.iova);
    if (n === undefined || n.value !== item) return false;
    this.tree.remove(n);
    return true;
  }

  /**
   * vfio_find_dma(): a range overlapping [start, start+size). With size 0 it
   * finds the range that contains `start` past its first byte.
   */
  find(start: number, size: number): T | undefined {
    if (size > 0) return this.tree.firstOverlap(start, start + size - 1)?.value;
    const n = this.tree.firstOverlap(start, start);
    return n !== undefined && n.start < start ? n.value : undefined;
  }

  /** The first range ending after `start` (vfio_find_dma_first_node without the size cut). */
  firstEndingAfter(start: number): T | undefined {
    return this.tree.firstOverlap(start, Number.POSITIVE_INFINITY)?.value;
  }

  /** The range after `item` in iova order. */
  next(item: T): T | undefined {
    return this.firstEndingAfter(item.iova + item.size);
  }

  first(): T | undefined {
    return this.tree.first()?.value;
  }

  last(): T | undefined {
    return this.tree.lastNode()?.value;
  }

  /** In iova order. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (const n of this.tree) yield n.value;
  }

  clear(): void {
    this.tree.clear();
  }
}
