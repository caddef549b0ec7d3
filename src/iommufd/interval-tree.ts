/**
 * An ordered set of disjoint closed intervals [start, last] (the role of the
 * kernel's area interval tree in io_pagetable.c), as a treap keyed by start
 * with per-subtree aggregates: lowest start, highest last and the widest
 * hole between consecutive intervals inside the subtree. Lookup, insert,
 * remove and first-fit hole search are O(log n) expected, so 100,000 live
 * mappings cost no more per operation than ten. Priorities come from a
 * fixed-seed generator: the same operations build the same tree.
 */
export interface IntervalNode<T> {
  start: number;
  last: number;
  value: T;
  /** @internal treap links and aggregates */
  l: IntervalNode<T> | null;
  r: IntervalNode<T> | null;
  prio: number;
  minStart: number;
  maxLast: number;
  maxGap: number;
  size: number;
}

export class IntervalTree<T> {
  private root: IntervalNode<T> | null = null;
  private seed = 0x2545f491;

  get size(): number {
    return this.root?.size ?? 0;
  }

  private rand(): number {
    // xorshift32
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }

  private pull(n: IntervalNode<T>): void {
    const { l, r } = n;
    n.minStart = l !== null ? l.minStart : n.start;
    n.maxLast = r !== null ? r.maxLast : n.last;
    let g = 0;
    if (l !== null) g = Math.max(l.maxGap, n.start - l.maxLast - 1);
    if (r !== null) g = Math.max(g, r.maxGap, r.minStart - n.last - 1);
    n.maxGap = g;
    n.size = 1 + (l?.size ?? 0) + (r?.size ?? 0);
  }

  /** Split into (start < key, start >= key). */
  private split(t: IntervalNode<T> | null, key: number): [IntervalNode<T> | null, IntervalNode<T> | null] {
    if (t === null) return [null, null];
    if (t.start < key) {
      const [a, b] = this.split(t.r, key);
      t.r = a;
      this.pull(t);
      return [t, b];
    }
    const [a, b] = this.split(t.l, key);
    t.l = b;
    this.pull(t);
    return [a, t];
  }

  private merge(a: IntervalNode<T> | null, b: IntervalNode<T> | null): IntervalNode<T> | null {
    if (a === null) return b;
    if (b === null) return a;
    if (a.prio > b.prio) {
      a.r = this.merge(a.r, b);
      this.pull(a);
      return a;
    }
    b.l = this.merge(a, b.l);
    this.pull(b);
    return b;
  }

  /** Insert [start, last]; the caller guarantees it overlaps nothing. */
  insert(start: number, last: number, value: T): IntervalNode<T> {
    const n: IntervalNode<T> = { start, last, value, l: null, r: null, prio: this.rand(), minStart: start, maxLast: last, maxGap: 0, size: 1 };
    const [a, b] = this.split(this.root, start);
    this.root = this.merge(this.merge(a, n), b);
    return n;
  }

  remove(n: IntervalNode<T>): void {
    const [a, bc] = this.split(this.root, n.start);
    const [b, c] = this.split(bc, n.start + 1);
    if (b !== n) throw new Error('IntervalTree.remove: node not in tree');
    this.root = this.merge(a, c);
  }

  /** The lowest interval that intersects [start, last], or undefined. */
  firstOverlap(start: number, last: number): IntervalNode<T> | undefined {
    // Intervals are disjoint, so `last` grows with `start`: find the first with last >= start.
    let t = this.root;
    let best: IntervalNode<T> | undefined;
    while (t !== null) {
      if (t.last >= start) {
        best = t;
        t = t.l;
      } else t = t.r;
    }
    return best !== undefined && best.start <= last ? best : undefined;
  }

  /** Every interval intersecting [start, last], in order. */
  overlapping(start: number, last: number): IntervalNode<T>[] {
    const out: IntervalNode<T>[] = [];
    const walk = (t: IntervalNode<T> | null): void => {
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
    return this.overlapping(-Infinity, Infinity);
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
    const search = (t: IntervalNode<T> | null, prevLast: number): number => {
      if (t === null || prevLast >= hi) return -1;
      if (t.maxLast < lo && t.r === null) return -1;
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
