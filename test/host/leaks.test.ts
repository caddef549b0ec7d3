import t from 'tap';
import fc from 'fast-check';
import { Board } from '../../machines/board.ts';
import { Host } from '../../src/host/host.ts';
import { pinUserPages, unpinUserPages, accountLockedVm, type PinnedPages } from '../../src/host/pin.ts';
import type { Process } from '../../src/host/process.ts';

type Op =
  | { k: 'mmap'; pages: number; huge: boolean; populate: boolean }
  | { k: 'munmap'; which: number }
  | { k: 'touch'; which: number; page: number }
  | { k: 'pin'; which: number; pages: number }
  | { k: 'unpin'; which: number }
  | { k: 'exit' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('mmap' as const), pages: fc.integer({ min: 1, max: 40 }), huge: fc.boolean(), populate: fc.boolean() }),
  fc.record({ k: fc.constant('munmap' as const), which: fc.nat() }),
  fc.record({ k: fc.constant('touch' as const), which: fc.nat(), page: fc.nat() }),
  fc.record({ k: fc.constant('pin' as const), which: fc.nat(), pages: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ k: fc.constant('unpin' as const), which: fc.nat() }),
  fc.record({ k: fc.constant('exit' as const) }),
);

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind} property: any sequence of mmap/munmap/touch/pin/unpin/exit leaks no page and balances locked memory`, async (t) => {
    const board = new Board(kind, { ramBytes: 64 * 2 ** 20 });
    const host = new Host(board);
    const idle = host.allocator.pagesInUse;
    let runs = 0;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        runs++;
        let p: Process = host.spawn({ memlockLimit: 64 * 4096 });
        const procs = [p];
        const areas: [bigint, number][] = [];
        const pins: { proc: Process; pin: PinnedPages }[] = [];
        for (const o of ops) {
          if (o.k === 'mmap') {
            const len = o.huge ? 2 ** 21 : o.pages * 4096;
            const a = p.mmap(len, { hugepage: o.huge ? '2M' : undefined, populate: o.populate });
            if (a > 0n) areas.push([a, len]);
          } else if (o.k === 'munmap' && areas.length > 0) {
            const [a, len] = areas.splice(o.which % areas.length, 1)[0]!;
            if (p.munmap(a, len) !== 0) return false;
          } else if (o.k === 'touch' && areas.length > 0) {
            const [a, len] = areas[o.which % areas.length]!;
            p.memWrite(a + BigInt((o.page * 4096) % len), new Uint8Array([1]));
          } else if (o.k === 'pin' && areas.length > 0) {
            const [a, len] = areas[o.which % areas.length]!;
            const n = Math.min(o.pages, len / 4096);
            if (accountLockedVm(p, n, true) < 0) continue;
            const pin = pinUserPages(p.mm, Number(a), n, true);
            if (typeof pin === 'number') accountLockedVm(p, n, false);
            else pins.push({ proc: p, pin });
          } else if (o.k === 'unpin' && pins.length > 0) {
            const { proc, pin } = pins.splice(o.which % pins.length, 1)[0]!;
            unpinUserPages(proc.mm, pin);
            accountLockedVm(proc, pin.count, false);
          } else if (o.k === 'exit') {
            p.exit();
            areas.length = 0;
            p = host.spawn({ memlockLimit: 64 * 4096 });
            procs.push(p);
          }
        }
        for (const { proc, pin } of pins) {
          unpinUserPages(proc.mm, pin);
          accountLockedVm(proc, pin.count, false);
        }
        p.exit();
        return host.allocator.pagesInUse === idle && procs.every((x) => x.mm.lockedVm === 0 && x.mm.pinnedVm === 0);
      }),
      { numRuns: 120, seed: 3 },
    );
    t.equal(runs >= 120, true, `${runs} sequences`);
  });
}
