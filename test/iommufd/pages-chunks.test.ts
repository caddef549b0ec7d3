/**
 * A pages object's per-page pin state (src/iommufd/pages.ts), kept in chunks
 * of 512 pages made on first pin and dropped with their last: against a plain
 * model of pin counts, for overlapping ranges that cross chunk boundaries.
 * Each page is pinned once while any range covers it (pinned_vm and
 * user->locked_vm count it once), answers with the physical address the mm
 * gave it, and is let go with the last range.
 */
import t from 'tap';
import fc from 'fast-check';
import { Board } from '../../machines/board.ts';
import { Host } from '../../src/host/host.ts';
import { Pages, PAGE } from '../../src/iommufd/pages.ts';

// Three chunks, the last partly used; and an object smaller than a chunk (one chunk of its own size).
for (const PAGES of [1300, 200]) t.test(`${PAGES} pages: pin and unpin of overlapping ranges agree with a model of pin counts`, async (t) => {
  const host = new Host(new Board('q35-vtd', { ramBytes: 64 * 2 ** 20 }));
  const p = host.spawn({ memlockLimit: 2 ** 30 });
  const va = Number(p.mmap(PAGES * PAGE));
  const range = fc.tuple(fc.integer({ min: 0, max: PAGES - 1 }), fc.integer({ min: 1, max: 700 })).map(([from, n]) => [from, Math.min(n, PAGES - from)] as const);
  fc.assert(fc.property(fc.array(range, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 12 }), (ranges, order) => {
    const pages = new Pages(p, va, PAGES * PAGE, true, 'user');
    const model = new Uint32Array(PAGES);
    const pinnedVm0 = p.mm.pinnedVm;
    const locked0 = p.user.lockedVm;
    const check = (): boolean => {
      let pinned = 0;
      for (let i = 0; i < PAGES; i++) {
        if (pages.pinCount(i) !== model[i]) return false;
        if (model[i]! > 0) {
          pinned++;
          if (pages.pa(i) !== p.mm.physOf(va + i * PAGE)) return false;
        }
      }
      return pages.npinned === pinned && p.mm.pinnedVm - pinnedVm0 === pinned && p.user.lockedVm - locked0 === pinned;
    };
    for (const [from, n] of ranges) {
      if (pages.pinRange(from, n) !== 0) return false;
      for (let i = from; i < from + n; i++) model[i]!++;
      if (!check()) return false;
    }
    // Let go in another order.
    const left = [...ranges];
    for (const k of order) {
      if (left.length === 0) break;
      const [from, n] = left.splice(k % left.length, 1)[0]!;
      pages.unpinRange(from, n);
      for (let i = from; i < from + n; i++) model[i]!--;
      if (!check()) return false;
    }
    for (const [from, n] of left) pages.unpinRange(from, n);
    let none = true;
    pages.forEachPinned(() => (none = false));
    return none && pages.npinned === 0 && p.mm.pinnedVm === pinnedVm0 && p.user.lockedVm === locked0;
  }), { numRuns: 60 });
  t.pass('60 sequences agree');
});

t.test('a range past the process\'s memory pins nothing and keeps nothing', async (t) => {
  const host = new Host(new Board('virt-smmuv3', { ramBytes: 64 * 2 ** 20 }));
  const p = host.spawn({ memlockLimit: 2 ** 30 });
  const va = Number(p.mmap(8 * PAGE));
  const pages = new Pages(p, va, 2 ** 46, true, 'user');
  t.equal(pages.count, 2 ** 34);
  t.ok(pages.pinRange(0, pages.count) < 0, 'the pin fails at the ninth page');
  t.equal(p.mm.pinnedVm, 0, 'the eight pinned before it are let go');
  t.equal(pages.npinned, 0);
  let kept = 0;
  pages.forEachPinned(() => kept++);
  t.equal(kept, 0, 'no page state kept');
  t.equal(pages.pinRange(0, 8), 0, 'the eight pages alone pin');
  t.equal(pages.pa(7), p.mm.physOf(va + 7 * PAGE));
  t.throws(() => pages.pa(8), /not pinned/, 'an unpinned page has no address');
});
