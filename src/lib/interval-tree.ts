/**
 * An ordered set of disjoint closed intervals [start, last], each with a
 * value: the role of the kernel's lib/interval_tree.c for the two front ends
 * (iommufd's areas in io_pagetable.c, VFIO type1's dma_list). A treap keyed
 * by start whose nodes also keep per-subtree aggregates: lowest start,
 * highest last, the widest hole between consecutive intervals inside the
 * subtree, and the node count. Lookup, insert, remove, ordered walks and
 * first-fit hole search are O(log n) expected, so 100,000 live intervals
 * cost no more per operation than ten. Priorities come from a fixed-seed
 * xorshift generator: the same operations build the same tree.
 */

/** One interval of the tree; `start`, `last` and `value` are fixed while it is in the tree. */
export interface IntervalNode<T> {
  readonly start: number;
  readonly last: number;
  readonly value: T;
}

class Node<T> implements IntervalNode<T> {
  l: Node<T> | null = null;
  r: Node<T> | null = null;
  minStart: number;
  maxLast: number;
  maxGap = 0;
  size = 1;

  constructor(
    readonly start: number,
    readonly last: number,
    readonly value: T,
    readonly prio: number,
  ) {
    this.minStart = start;
    this.maxLast = last;
  }
}

/** Recompute a node's aggregates from its children. */
function pull<T>(n: Node<T>): void {
  const l = n.l;
  const r = n.r;
  let gap = 0;
  let size = 1;
  if (l !== null) {
    n.minStart = l.minStart;
    gap = Math.max(l.maxGap, n.start - l.maxLast - 1);
    size += l.size;
  } else n.minStart = n.start;
  if (r !== null) {
    n.maxLast = r.maxLast;
    gap = Math.max(gap, r.maxGap, r.minStart - n.last - 1);
    size += r.size;
  } else n.maxLast = n.last;
  n.maxGap = gap;
  n.size = size;
}

export class IntervalTree<T> {
  private root: Node<T> | null = null;
  private seed = 0x2545f491;
  /** The two halves the last split() produced (kept here, not in a returned pair, so a split allocates nothing). */
  private lo: Node<T> | null = null;
  private hi: Node<T> | null = null;

  get size(): number {
    return this.root === null ? 0 : this.root.size;
  }

  private nextPrio(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }

  /** Split `t` into lo (start < key) and hi (start >= key). */
  private split(t: Node<T> | null, key: number): void {
    if (t === null) {
      this.lo = null;
      this.hi = null;
      return;
    }
    if (t.start < key) {
      this.split(t.r, key);
      t.r = this.lo;
      pull(t);
      this.lo = t;
    } else {
      this.split(t.l, key);
      t.l = this.hi;
      pull(t);
      this.hi = t;
    }
  }

  /** Join two treaps, every start of `a` below every start of `b`. */
  private merge(a: Node<T> | null, b: Node<T> | null): Node<T> | null {
    if (a === null) return b;
    if (b === null) return a;
    if (a.prio > b.prio) {
      a.r = this.merge(a.r, b);
      pull(a);
      return a;
    }
    b.l = this.merge(a, b.l);
    pull(b);
    return b;
  }

  /** `n` put into the subtree `t`: down by start to where its priority belongs, and the subtree below split around it. */
  private link(t: Node<T> | null, n: Node<T>): Node<T> {
    if (t === null) return n;
    if (n.prio > t.prio) {
      this.split(t, n.start);
      n.l = this.lo;
      n.r = this.hi;
      pull(n);
      return n;
    }
    if (n.start < t.start) t.l = this.link(t.l, n);
    else t.r = this.link(t.r, n);
    pull(t);
    return t;
  }

  /** The subtree `t` without `n` (its children merged in its place); undefined when `n` is not in it. */
  private unlink(t: Node<T> | null, n: IntervalNode<T>): Node<T> | null | undefined {
    if (t === null) return undefined;
    if (t === n) return this.merge(t.l, t.r);
    if (n.start === t.start) return undefined;
    const below = this.unlink(n.start < t.start ? t.l : t.r, n);
    if (below === undefined) return undefined;
    if (n.start < t.start) t.l = below;
    else t.r = below;
    pull(t);
    return t;
  }

  /** Insert [start, last]; the caller guarantees it overlaps nothing in the tree. */
  insert(start: number, last: number, value: T): IntervalNode<T> {
    const n = new Node(start, last, value, this.nextPrio());
    this.root = this.link(this.root, n);
    return n;
  }

  /** Remove a node this tree returned. Removing one it does not hold is a caller's bug: it throws, changing nothing. */
  remove(node: IntervalNode<T>): void {
    const root = this.unlink(this.root, node);
    if (root === undefined) throw new Error('IntervalTree.remove: node not in tree');
    this.root = root;
  }

  clear(): void {
    this.root = null;
  }

  /** The lowest interval that intersects [start, last], or undefined. */
  firstOverlap(start: number, last: number): IntervalNode<T> | undefined {
    // Intervals are disjoint, so `last` grows with `start`: find the first with last >= start.
    let t = this.root;
    let best: Node<T> | null = null;
    while (t !== null) {
      if (t.last >= start) {
        best = t;
        if (t.start <= start) break;
        t = t.l;
      } else t = t.r;
    }
    return best !== null && best.start <= last ? best : undefined;
  }

  /** The interval after `node` in order, or undefined. */
  next(node: IntervalNode<T>): IntervalNode<T> | undefined {
    return this.firstOverlap(node.last + 1, Number.POSITIVE_INFINITY);
  }

  /** The lowest interval, or undefined when the tree is empty. */
  first(): IntervalNode<T> | undefined {
    let t = this.root;
    if (t === null) return undefined;
    while (t.l !== null) t = t.l;
    return t;
  }

  /** The highest interval, or undefined when the tree is empty. */
  lastNode(): IntervalNode<T> | undefined {
    let t = this.root;
    if (t === null) return undefined;
    while (t.r !== null) t = t.r;
    return t;
  }

  /** Every interval intersecting [start, last], in order. */
  overlapping(start: number, last: number): IntervalNode<T>[] {
    const out: IntervalNode<T>[] = [];
    const walk = (t: Node<T> | null): void => {
      if (t === null || t.maxLast < start || t.minStart > last) return;
      walk(t.l);
      if (t.last >= start && t.start <= last) out.push(t);
      walk(t.r);
    };
    walk(this.root);
    return out;
  }

  /** All intervals in order. */
  all(): IntervalNode<T>[] {
    return this.overlapping(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
  }

  /** In-order walk (an explicit stack: no recursion depth limit). */
  *[Symbol.iterator](): IterableIterator<IntervalNode<T>> {
    const stack: Node<T>[] = [];
    let n = this.root;
    while (n !== null || stack.length > 0) {
      while (n !== null) {
        stack.push(n);
        n = n.l;
      }
      const top = stack.pop()!;
      yield top;
      n = top.r;
    }
  }

  /**
   * The lowest address x in [lo, hi] with [x, x+len-1] inside [lo, hi],
   * clear of every interval, and `fit(a, b)` (given the hole [a, b]
   * clipped to [lo, hi]) accepting it: fit returns x or -1.
   */
  firstFit(lo: number, hi: number, len: number, fit: (a: number, b: number) => number): number {
    const tryHole = (a: number, b: number): number => {
      const s = Math.max(a, lo);
      const e = Math.min(b, hi);
      if (s > e || e - s + 1 < len) return -1;
      return fit(s, e);
    };
    const search = (t: Node<T> | null, prevLast: number): number => {
      if (t === null || prevLast >= hi) return -1;
      if (Math.max(t.minStart - prevLast - 1, t.maxGap) < len) return -1;
      if (t.maxLast < lo) return -1;
      const r1 = search(t.l, prevLast);
      if (r1 >= 0) return r1;
      const before = t.l !== null ? t.l.maxLast : prevLast;
      const r2 = tryHole(before + 1, t.start - 1);
      if (r2 >= 0) return r2;
      return search(t.r, t.last);
    };
    const r = search(this.root, lo - 1);
    if (r >= 0) return r;
    const tail = this.root === null ? lo : Math.max(lo, this.root.maxLast + 1);
    return tryHole(tail, hi);
  }
}
