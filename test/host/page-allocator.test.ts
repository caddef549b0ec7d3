import t from 'tap';
import fc from 'fast-check';
import { PageAllocator, ORDER_1G, ORDER_2M } from '../../src/host/page-allocator.ts';
import { FaultInjector } from '../../src/fault/injector.ts';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

t.test('single pages, 2 MiB and 1 GiB runs are naturally aligned and counted', async (t) => {
  const a = new PageAllocator([{ gpa: 0x4000_0000, size: 2 * GIB }], () => {});
  const p = a.allocPage()!;
  t.equal(p % 4096, 0);
  const m = a.allocPages(ORDER_2M)!;
  t.equal(m % (2 * MIB), 0);
  const g = a.allocPages(ORDER_1G)!;
  t.equal(g % GIB, 0);
  t.equal(a.pagesInUse, 1 + 512 + 262144);
  a.freePage(p);
  a.freePages(m, ORDER_2M);
  a.freePages(g);
  t.equal(a.pagesInUse, 0);
});

t.test('allocation fails cleanly when memory is exhausted or fragmented', async (t) => {
  const a = new PageAllocator([{ gpa: 0, size: 4 * MIB }], () => {});
  t.equal(a.allocPages(ORDER_1G), undefined, 'no 1 GiB run in 4 MiB');
  const first = a.allocPages(ORDER_2M)!;
  const pages = [];
  for (let i = 0; i < 512; i++) pages.push(a.allocPage()!);
  t.equal(a.allocPage(), undefined);
  t.equal(a.allocPages(ORDER_2M), undefined);
  for (const p of pages) a.freePage(p);
  t.not(a.allocPages(ORDER_2M), undefined, 'buddies merged back into a 2 MiB run');
  a.freePages(first);
  t.equal(a.allocPages(-1), undefined);
  t.equal(a.allocPages(19), undefined);
});

t.test('freeing what was not allocated, or with the wrong order, is a kernel bug', async (t) => {
  const a = new PageAllocator([{ gpa: 0, size: 4 * MIB }], () => {});
  const p = a.allocPages(1)!;
  t.throws(() => a.freePages(p, 0));
  t.throws(() => a.freePage(p + 4096));
  a.freePages(p, 1);
  t.throws(() => a.freePages(p, 1), 'double free');
});

t.test('freed memory is handed back to be zeroed', async (t) => {
  const zeroed: [number, number][] = [];
  const a = new PageAllocator([{ gpa: 0, size: 4 * MIB }], (pa, n) => zeroed.push([pa, n]));
  const p = a.allocPages(2)!;
  a.freePages(p);
  t.same(zeroed, [[p, 16384]]);
});

t.test('spans that are not aligned to large orders still cover every page', async (t) => {
  const a = new PageAllocator([{ gpa: 0x1000, size: 3 * MIB }, { gpa: 0x1_0000_0000 * 300, size: 2 * MIB }], () => {});
  t.equal(a.totalPages, 768 + 512);
  const big = a.allocPages(ORDER_2M)!;
  t.equal(big, 0x1_0000_0000 * 300, 'the only aligned 2 MiB run is in the high span');
});

t.test('the host.page_alloc injection point fails the nth allocation', async (t) => {
  const faults = new FaultInjector();
  const a = new PageAllocator([{ gpa: 0, size: 4 * MIB }], () => {}, faults);
  faults.failNth('host.page_alloc', 2);
  t.not(a.allocPage(), undefined);
  t.equal(a.allocPage(), undefined);
  t.not(a.allocPage(), undefined);
  t.equal(faults.point('host.page_alloc').injected, 1);
  t.equal(a.pagesInUse, 2, 'the failed allocation took nothing');
});

t.test('property: random alloc/free never overlaps, stays aligned, and frees back to whole', async (t) => {
  let runs = 0;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 10 }), fc.nat()), { maxLength: 80 }), (ops) => {
      runs++;
      const a = new PageAllocator([{ gpa: 0x10_0000, size: 8 * MIB }], () => {});
      const live = new Map<number, number>();
      for (const [alloc, order, pick] of ops) {
        if (alloc || live.size === 0) {
          const pa = a.allocPages(order);
          if (pa === undefined) continue;
          const len = 4096 * 2 ** order;
          if (pa % len !== 0) return false;
          for (const [q, ql] of live) if (pa < q + ql && q < pa + len) return false;
          live.set(pa, len);
        } else {
          const keys = [...live.keys()];
          const k = keys[pick % keys.length]!;
          a.freePages(k);
          live.delete(k);
        }
        let sum = 0;
        for (const l of live.values()) sum += l / 4096;
        if (sum !== a.pagesInUse) return false;
      }
      for (const k of live.keys()) a.freePages(k);
      return a.pagesInUse === 0 && a.allocPages(ORDER_2M) !== undefined && a.allocPages(ORDER_2M + 1) !== undefined;
    }),
    { numRuns: 150, seed: 42 },
  );
  t.equal(runs >= 150, true, `${runs} property runs`);
});
