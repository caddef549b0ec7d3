import fc from 'fast-check';
import t from 'tap';
import { DmaTree } from '../../src/vfio/dma-tree.ts';

interface R {
  iova: number;
  size: number;
}

/** vfio_find_dma() over a plain list: the reference. */
function refFind(list: R[], start: number, size: number): R | undefined {
  return list.find((d) => !(start + size <= d.iova) && !(start >= d.iova + d.size));
}

t.test('the DMA tree agrees with a plain list on insert, remove, find, firstEndingAfter and order', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), slot: fc.integer({ min: 0, max: 63 }), len: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('del' as const), slot: fc.integer({ min: 0, max: 63 }), len: fc.constant(0) }),
    fc.record({ kind: fc.constant('find' as const), slot: fc.integer({ min: 0, max: 70 }), len: fc.integer({ min: 0, max: 6 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const tree = new DmaTree<R>();
      let list: R[] = [];
      for (const o of ops) {
        const start = o.slot * 0x1000;
        if (o.kind === 'add') {
          const r = { iova: start, size: o.len * 0x1000 };
          if (refFind(list, r.iova, r.size) === undefined) {
            tree.insert(r);
            list.push(r);
          }
        } else if (o.kind === 'del') {
          const r = list.find((d) => d.iova === start);
          if (r !== undefined) {
            if (!tree.remove(r)) return false;
            list = list.filter((d) => d !== r);
          }
        } else {
          if (tree.find(start, o.len * 0x1000) !== refFind(list, start, o.len * 0x1000)) return false;
          const sorted = [...list].sort((a, b) => a.iova - b.iova);
          if (tree.firstEndingAfter(start) !== sorted.find((d) => d.iova + d.size > start)) return false;
        }
      }
      const sorted = [...list].sort((a, b) => a.iova - b.iova);
      const walked = [...tree];
      if (walked.length !== sorted.length || walked.some((d, i) => d !== sorted[i])) return false;
      if (tree.size !== list.length || tree.first() !== sorted[0] || tree.last() !== sorted[sorted.length - 1]) return false;
      for (let i = 0; i + 1 < sorted.length; i++) if (tree.next(sorted[i]!) !== sorted[i + 1]) return false;
      return true;
    }),
    { seed: 7, numRuns: 300 },
  );
  t.pass('fast-check found no counterexample');
});

t.test('find with size 0 finds only a range containing the address past its first byte (vfio_find_dma(iova, 0))', async (t) => {
  const tree = new DmaTree<R>();
  const r = { iova: 0x4000, size: 0x2000 };
  tree.insert(r);
  t.equal(tree.find(0x4000, 0), undefined);
  t.equal(tree.find(0x5fff, 0), r);
  t.equal(tree.find(0x6000, 0), undefined);
});
