/**
 * The interval tree both front ends keep their ranges in (iommufd areas,
 * VFIO type1 DMAs), against a sorted array as the reference: every answer
 * the tree gives after any sequence of inserts and removes is the one a
 * linear scan gives.
 */
import fc from 'fast-check';
import t from 'tap';
import { IntervalTree, type IntervalNode } from '../../src/lib/interval-tree.ts';

interface Iv {
  start: number;
  last: number;
  id: number;
}

const overlaps = (iv: Iv, s: number, l: number) => iv.start <= l && iv.last >= s;

/** firstFit over the sorted list: the holes in [lo, hi] in address order, first one `fit` accepts. */
function refFirstFit(sorted: Iv[], lo: number, hi: number, len: number, fit: (a: number, b: number) => number): number {
  let prev = lo - 1;
  const holes: [number, number][] = [];
  for (const iv of sorted) {
    holes.push([prev + 1, iv.start - 1]);
    prev = Math.max(prev, iv.last);
  }
  holes.push([prev + 1, hi]);
  for (const [a, b] of holes) {
    const s = Math.max(a, lo);
    const e = Math.min(b, hi);
    if (s > e || e - s + 1 < len) continue;
    const x = fit(s, e);
    if (x >= 0) return x;
  }
  return -1;
}

/** An alignment constraint, as iopt_alloc_iova's is: the lowest aligned start in [a, b] that fits len. */
const aligned = (align: number, len: number) => (a: number, b: number) => {
  const x = Math.ceil(a / align) * align;
  return x + len - 1 <= b ? x : -1;
};

const op = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), a: fc.integer({ min: 0, max: 200 }), b: fc.integer({ min: 0, max: 12 }) }),
  fc.record({ kind: fc.constant('del' as const), a: fc.integer({ min: 0, max: 200 }), b: fc.constant(0) }),
  fc.record({ kind: fc.constant('query' as const), a: fc.integer({ min: 0, max: 220 }), b: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ kind: fc.constant('fit' as const), a: fc.integer({ min: 0, max: 220 }), b: fc.integer({ min: 1, max: 20 }) }),
);

t.test('the tree agrees with a sorted list on insert, remove, overlap queries, order, neighbours and first fit', async (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), fc.integer({ min: 1, max: 8 }), (ops, align) => {
      const tree = new IntervalTree<Iv>();
      const nodes = new Map<Iv, IntervalNode<Iv>>();
      let list: Iv[] = [];
      let id = 0;
      for (const o of ops) {
        if (o.kind === 'add') {
          const iv = { start: o.a, last: o.a + o.b, id: id++ };
          if (list.some((x) => overlaps(x, iv.start, iv.last))) continue;
          nodes.set(iv, tree.insert(iv.start, iv.last, iv));
          list.push(iv);
          list.sort((x, y) => x.start - y.start);
        } else if (o.kind === 'del') {
          const iv = list.find((x) => overlaps(x, o.a, o.a));
          if (iv === undefined) continue;
          tree.remove(nodes.get(iv)!);
          nodes.delete(iv);
          list = list.filter((x) => x !== iv);
        } else if (o.kind === 'query') {
          const s = o.a;
          const l = o.a + o.b;
          if (tree.firstOverlap(s, l)?.value !== list.find((x) => overlaps(x, s, l))) return false;
          const got = tree.overlapping(s, l).map((n) => n.value);
          const want = list.filter((x) => overlaps(x, s, l));
          if (got.length !== want.length || got.some((v, i) => v !== want[i])) return false;
        } else {
          const lo = o.a;
          const hi = o.a + 40;
          if (tree.firstFit(lo, hi, o.b, aligned(align, o.b)) !== refFirstFit(list, lo, hi, o.b, aligned(align, o.b))) return false;
        }
      }
      if (tree.size !== list.length) return false;
      const walked = [...tree].map((n) => n.value);
      const all = tree.all().map((n) => n.value);
      if (walked.some((v, i) => v !== list[i]) || all.some((v, i) => v !== list[i]) || walked.length !== list.length) return false;
      if (tree.first()?.value !== list[0] || tree.lastNode()?.value !== list[list.length - 1]) return false;
      for (let i = 0; i < list.length; i++) if (tree.next(nodes.get(list[i]!)!)?.value !== list[i + 1]) return false;
      return true;
    }),
    { seed: 16, numRuns: 400 },
  );
  t.pass('fast-check found no counterexample');
});

t.test('removing a node the tree does not hold throws and leaves the tree as it was', async (t) => {
  const a = new IntervalTree<string>();
  const b = new IntervalTree<string>();
  a.insert(0, 9, 'x');
  const y = a.insert(20, 29, 'y');
  const alien = b.insert(20, 29, 'alien');
  t.throws(() => a.remove(alien), /not in tree/);
  t.same(a.all().map((n) => n.value), ['x', 'y'], 'both still there');
  a.remove(y);
  t.same(a.all().map((n) => n.value), ['x']);
  t.equal(a.size, 1);
});

t.test('first fit skips holes too small or refused, and uses the space after the last interval', async (t) => {
  const tree = new IntervalTree<number>();
  tree.insert(10, 19, 0);
  tree.insert(23, 29, 1);
  tree.insert(40, 49, 2);
  const any = (a: number) => a;
  t.equal(tree.firstFit(0, 100, 10, any), 0, 'the hole below the first interval');
  t.equal(tree.firstFit(10, 100, 3, any), 20, '[20, 22] holds 3');
  t.equal(tree.firstFit(10, 100, 4, any), 30, '[20, 22] is too small for 4');
  t.equal(tree.firstFit(10, 100, 4, aligned(16, 4)), 32, 'aligned to 16');
  t.equal(tree.firstFit(10, 100, 11, any), 50, 'after the last');
  t.equal(tree.firstFit(10, 55, 11, any), -1, 'nothing fits below hi');
});

t.test('100,000 intervals: a lookup and a first fit still take a few dozen steps (a balanced tree)', async (t) => {
  const tree = new IntervalTree<number>();
  for (let i = 0; i < 100_000; i++) tree.insert(i * 16, i * 16 + 7, i);
  t.equal(tree.size, 100_000);
  t.equal(tree.firstOverlap(800_003, 800_003)?.value, 50_000);
  let calls = 0;
  const fit = (a: number, b: number) => (calls++, b - a + 1 >= 9 ? a : -1);
  t.equal(tree.firstFit(0, 2_000_000, 9, fit), 1_599_992, 'only the space after the last interval is 9 wide');
  t.equal(calls, 1, 'no hole of the 100,000 was offered: the aggregates pruned them');
});
