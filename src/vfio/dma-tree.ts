/**
 * The type1 DMA list (vfio_iommu.dma_list, an rbtree in Linux): disjoint
 * [iova, iova+size) ranges ordered by iova, with O(log n) lookups, inserts
 * and removals. A treap whose priorities come from a fixed xorshift sequence,
 * so the shape (and the run) is deterministic.
 */
export interface IovaRange {
  iova: number;
  size: number;
}

class TreapNode<T extends IovaRange> {
  left: TreapNode<T> | undefined;
  right: TreapNode<T> | undefined;
  constructor(
    readonly item: T,
    readonly prio: number,
  ) {}
}

export class DmaTree<T extends IovaRange> {
  private root: TreapNode<T> | undefined;
  private count = 0;
  private seed = 0x9e3779b9;

  get size(): number {
    return this.count;
  }

  private nextPrio(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }

  /** Split into (iova < key, iova >= key). */
  private split(t: TreapNode<T> | undefined, key: number): [TreapNode<T> | undefined, TreapNode<T> | undefined] {
    if (t === undefined) return [undefined, undefined];
    if (t.item.iova < key) {
      const [l, r] = this.split(t.right, key);
      t.right = l;
      return [t, r];
    }
    const [l, r] = this.split(t.left, key);
    t.left = r;
    return [l, t];
  }

  private merge(a: TreapNode<T> | undefined, b: TreapNode<T> | undefined): TreapNode<T> | undefined {
    if (a === undefined) return b;
    if (b === undefined) return a;
    if (a.prio > b.prio) {
      a.right = this.merge(a.right, b);
      return a;
    }
    b.left = this.merge(a, b.left);
    return b;
  }

  /** Link a range that overlaps nothing in the tree (the caller checked with find()). */
  insert(item: T): void {
    const [l, r] = this.split(this.root, item.iova);
    this.root = this.merge(this.merge(l, new TreapNode(item, this.nextPrio())), r);
    this.count++;
  }

  /** Unlink the range starting at item.iova. */
  remove(item: T): boolean {
    const [l, rest] = this.split(this.root, item.iova);
    const [mid, r] = this.split(rest, item.iova + 1);
    const found = mid !== undefined && mid.item === item;
    this.root = this.merge(l, found ? r : this.merge(mid, r));
    if (found) this.count--;
    return found;
  }

  /**
   * vfio_find_dma(): a range overlapping [start, start+size). With size 0 it
   * finds the range that contains `start` past its first byte.
   */
  find(start: number, size: number): T | undefined {
    let n = this.root;
    while (n !== undefined) {
      const d = n.item;
      if (start + size <= d.iova) n = n.left;
      else if (start >= d.iova + d.size) n = n.right;
      else return d;
    }
    return undefined;
  }

  /** The first range ending after `start` (vfio_find_dma_first_node without the size cut). */
  firstEndingAfter(start: number): T | undefined {
    let n = this.root;
    let best: T | undefined;
    while (n !== undefined) {
      if (start < n.item.iova + n.item.size) {
        best = n.item;
        if (start >= n.item.iova) break;
        n = n.left;
      } else n = n.right;
    }
    return best;
  }

  /** The range after `item` in iova order. */
  next(item: T): T | undefined {
    return this.firstEndingAfter(item.iova + item.size);
  }

  first(): T | undefined {
    let n = this.root;
    if (n === undefined) return undefined;
    while (n.left !== undefined) n = n.left;
    return n.item;
  }

  last(): T | undefined {
    let n = this.root;
    if (n === undefined) return undefined;
    while (n.right !== undefined) n = n.right;
    return n.item;
  }

  /** In-order walk (explicit stack: no recursion depth limit). */
  *[Symbol.iterator](): IterableIterator<T> {
    const stack: TreapNode<T>[] = [];
    let n = this.root;
    while (n !== undefined || stack.length > 0) {
      while (n !== undefined) {
        stack.push(n);
        n = n.left;
      }
      const top = stack.pop()!;
      yield top.item;
      n = top.right;
    }
  }

  clear(): void {
    this.root = undefined;
    this.count = 0;
  }
}
