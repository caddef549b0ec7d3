import t from 'tap';
import { Board } from '../../machines/board.ts';
import { Host } from '../../src/host/host.ts';
import { EINVAL, ENOMEM, EPERM } from '../../src/uapi/errno.ts';
import { pinUserPages, unpinUserPages } from '../../src/host/pin.ts';
import type { ResidencyObserver } from '../../src/host/mm.ts';

const MIB = 2 ** 20;
for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  const make = () => {
    const board = new Board(kind, { ramBytes: 64 * MIB });
    const host = new Host(board);
    return { board, host, p: host.spawn() };
  };

  t.test(`${kind}: MAP_FIXED maps exactly at the address and replaces what was there`, async (t) => {
    const { p } = make();
    t.equal(p.mmap(3 * 4096, { addr: 0x40_0000n, fixed: true }), 0x40_0000n);
    t.equal(p.memWrite(0x40_1000n, new Uint8Array([1, 2, 3])), 3);
    t.equal(p.mm.residentPages, 1, 'one page faulted in');
    // Over the middle page: the old page goes, the new one reads zero, the neighbours stay.
    p.memWrite(0x40_0000n, new Uint8Array([9]));
    t.equal(p.mmap(4096, { addr: 0x40_1000n, fixed: true }), 0x40_1000n);
    t.same(p.memRead(0x40_1000n, 3), new Uint8Array(3), 'the replaced page reads zero');
    t.same(p.memRead(0x40_0000n, 1), new Uint8Array([9]), 'the page below is untouched');
    t.equal(p.mm.areas().length, 3, 'the old area was cut around the new one');
    t.equal(p.mm.residentPages, 2, 'the replaced page left (the new one is resident from the read)');
  });

  t.test(`${kind}: MAP_FIXED checks in __get_unmapped_area's order`, async (t) => {
    const { p } = make();
    t.equal(p.mmap(4096, { addr: 0x40_0800n, fixed: true }), BigInt(-EINVAL), 'unaligned: EINVAL');
    t.equal(p.mmap(4096, { addr: 0x1000n, fixed: true }), BigInt(-EPERM), 'below mmap_min_addr: EPERM');
    t.equal(p.mmap(4096, { addr: 0n, fixed: true }), BigInt(-EPERM), 'page 0: EPERM');
    t.equal(p.mmap(4096, { fixed: true }), BigInt(-EINVAL), 'MAP_FIXED without an address');
    const top = kind === 'q35-vtd' ? 2n ** 47n - 4096n : 2n ** 48n;
    t.equal(p.mmap(8192, { addr: top - 4096n, fixed: true }), BigInt(-ENOMEM), 'past TASK_SIZE: ENOMEM');
    t.equal(p.mmap(4096, { addr: top - 4096n, fixed: true }), top - 4096n, 'the last page of user space');
    for (const far of [2n ** 53n, 2n ** 53n + 4096n, 2n ** 56n]) {
      t.equal(p.mmap(4096, { addr: far, fixed: true }), BigInt(-ENOMEM), `0x${far.toString(16)}, past 2^53 and TASK_SIZE: ENOMEM`);
    }
    t.equal(p.mmap(2 * MIB, { addr: 0x40_1000n, fixed: true, hugepage: '2M' }), BigInt(-EINVAL), 'a huge page needs huge alignment');
    const h = p.mmap(2 * MIB, { hugepage: '2M' });
    t.equal(p.mmap(4096, { addr: h + 4096n, fixed: true }), BigInt(-EINVAL), 'cannot cut a huge page');
  });

  t.test(`${kind}: a hint is taken when the range is free`, async (t) => {
    const { p } = make();
    t.equal(p.mmap(4096, { addr: 0x50_0000n }), 0x50_0000n);
    const again = p.mmap(4096, { addr: 0x50_0000n });
    t.ok(again > 0n && again !== 0x50_0000n, 'taken: placed elsewhere, nothing replaced');
  });

  t.test(`${kind}: a hint is rounded down to its page (round_hint_to_min) and may lie anywhere free below TASK_SIZE`, async (t) => {
    // Linux 7.3 on the rig (x86-64): a hint of 0x300000123 gives 0x300000000; a free hint at
    // 0x7ffff7000000, above mmap_base, is taken; one above TASK_SIZE is ignored.
    const { p } = make();
    t.equal(p.mmap(8192, { addr: 0x3_0000_0123n }), 0x3_0000_0000n, 'rounded down, not up');
    const high = kind === 'q35-vtd' ? 0x7fff_f700_0000n : 0xffff_f700_0000n;
    t.equal(p.mmap(8192, { addr: high }), high, 'above mmap_base but free: taken');
    const beyond = p.mmap(8192, { addr: 0x9000_0000_0000_0n });
    t.ok(beyond > 0n && beyond < high, 'beyond TASK_SIZE: ignored');
    const below = p.mmap(4096, { addr: 0x1000n });
    t.equal(below, 0x1_0000n, 'below mmap_min_addr: raised to it (round_hint_to_min)');
    t.equal(p.mmap(2 * MIB, { addr: 0x4_0000_0123n, hugepage: '2M' }), 0x4_0000_0000n, 'a huge page hint: page rounded down, then aligned up to the huge page (hugetlb_get_unmapped_area)');
  });

  t.test(`${kind}: the residency observer sees pages arrive and leave, pinned ones flagged`, async (t) => {
    const { p } = make();
    const log: string[] = [];
    const obs: ResidencyObserver = {
      mapped: (va, _pa, bytes) => log.push(`+${va.toString(16)}/${bytes}`),
      unmapped: (va, _pa, bytes, kept) => log.push(`-${va.toString(16)}/${bytes}${kept ? ' pinned' : ''}`),
    };
    p.mm.residency = obs;
    const a = Number(p.mmap(2 * 4096, { addr: 0x60_0000n, fixed: true }));
    p.memWrite(BigInt(a), new Uint8Array(4096 * 2));
    const pin = pinUserPages(p.mm, a + 4096, 1, true);
    if (typeof pin === 'number') throw new Error(`pin ${pin}`);
    p.munmap(BigInt(a), 2 * 4096);
    t.same(log, ['+600000/4096', '+601000/4096', '-600000/4096', '-601000/4096 pinned']);
    unpinUserPages(p.mm, pin);
    p.exit();
  });
}
