/**
 * fork(2) in the process API (kernel/fork.c dup_mm, mm/memory.c
 * copy_present_pte / copy_present_page / do_wp_page): the child gets a
 * copy-on-write copy of the address space (write-protected on both sides,
 * copied by whoever writes first), except pages the parent may have pinned,
 * which the child gets a copy of at once; and a copy of the fd table that
 * shares every open file. The child starts with nothing locked or pinned.
 */
import t from 'tap';
import { Board } from '../../machines/board.ts';
import { createMachine } from '../../machines/machine.ts';
import { Host } from '../../src/host/host.ts';
import type { Process } from '../../src/host/process.ts';
import { pinUserPages, unpinUserPages, type PinnedPages } from '../../src/host/pin.ts';
import { EFAULT } from '../../src/uapi/errno.ts';

const PAGE = 4096;
const MIB2 = 2 ** 21;

function host() {
  const board = new Board('virt-smmuv3', { ramBytes: 128 * 2 ** 20 });
  return new Host(board);
}

function forked(p: Process): Process {
  const c = p.fork();
  return c;
}

t.test('fork: the child sees the parent\'s memory; pages are shared write-protected until one side writes, then each has its own', async (t) => {
  const h = host();
  const p = h.spawn();
  const va = p.mmap(2 * PAGE, { populate: true });
  p.memWrite(va, new Uint8Array([1, 2, 3]));
  const pa = p.mm.physOf(Number(va));
  const c = forked(p);
  t.not(c.pid, p.pid);
  t.equal(c.mm.physOf(Number(va)), pa, 'the same page, shared');
  t.equal(h.pages.count(pa), 2, 'one reference per mm');
  t.same(c.memRead(va, 3), new Uint8Array([1, 2, 3]));
  t.equal(c.memWrite(va, new Uint8Array([9])), 1);
  t.not(c.mm.physOf(Number(va)), pa, 'the child\'s write copied the page');
  t.same(p.memRead(va, 3), new Uint8Array([1, 2, 3]), 'the parent does not see it');
  t.same(c.memRead(va, 3), new Uint8Array([9, 2, 3]));
  t.equal(h.pages.count(pa), 1);
  t.equal(p.memWrite(va, new Uint8Array([7])), 1);
  t.equal(p.mm.physOf(Number(va)), pa, 'the parent, now the only user, writes in place (wp_can_reuse_anon_folio)');
  t.equal(p.memWrite(va + BigInt(PAGE), new Uint8Array([5])), 1);
  t.same(c.memRead(va + BigInt(PAGE), 1), new Uint8Array([0]), 'a parent write after fork stays the parent\'s');
  t.equal(c.memRead(0x1000n, 1), -EFAULT, 'nothing mapped where the parent had nothing');
});

t.test('fork: a hugepage area is shared copy-on-write in whole huge pages', async (t) => {
  const h = host();
  const p = h.spawn();
  const va = p.mmap(MIB2, { hugepage: '2M', populate: true });
  p.memWrite(va + 100n, new Uint8Array([4]));
  const c = forked(p);
  t.equal(c.memWrite(va + BigInt(MIB2 - 1), new Uint8Array([8])), 1);
  t.equal(c.mm.physOf(Number(va)) % MIB2, 0, 'the child\'s copy is a 2M page');
  t.not(c.mm.physOf(Number(va)), p.mm.physOf(Number(va)));
  t.same(c.memRead(va + 100n, 1), new Uint8Array([4]), 'copied whole');
  t.same(p.memRead(va + BigInt(MIB2 - 1), 1), new Uint8Array([0]));
});

t.test('fork: a page the parent has pinned is copied for the child at once, so the pinned page stays the parent\'s (copy_present_page)', async (t) => {
  const h = host();
  const p = h.spawn({ memlockLimit: 2 ** 30 });
  const va = p.mmap(2 * PAGE, { populate: true });
  p.memWrite(va, new Uint8Array([1]));
  const pinned = pinUserPages(p.mm, Number(va), 1, true) as PinnedPages;
  const pa = pinned.pas[0]!;
  const c = forked(p);
  t.not(c.mm.physOf(Number(va)), pa, 'the child got its own copy');
  t.same(c.memRead(va, 1), new Uint8Array([1]), 'with the same bytes');
  t.equal(p.mm.physOf(Number(va) + PAGE), c.mm.physOf(Number(va) + PAGE), 'the unpinned page is shared');
  t.equal(p.memWrite(va, new Uint8Array([2])), 1);
  t.equal(p.mm.physOf(Number(va)), pa, 'the parent still writes the pinned page (what a device sees)');
  t.equal(h.platform.sysmem.read8(pa), 2);
  t.same(c.memRead(va, 1), new Uint8Array([1]));
  t.equal(c.mm.pinnedVm, 0, 'the child pins nothing');
  t.equal(p.mm.pinnedVm, 1);
  unpinUserPages(p.mm, pinned);
});

t.test('fork: a pin of a copy-on-write page unshares it first (gup_must_unshare), read-only pins too', async (t) => {
  const h = host();
  const p = h.spawn({ memlockLimit: 2 ** 30 });
  const va = p.mmap(PAGE, { populate: true });
  const shared = p.mm.physOf(Number(va));
  const c = forked(p);
  const pin = pinUserPages(c.mm, Number(va), 1, false) as PinnedPages;
  t.not(pin.pas[0], shared, 'the child\'s pin is on a page of its own');
  t.equal(c.mm.physOf(Number(va)), pin.pas[0]);
  t.equal(p.mm.physOf(Number(va)), shared, 'the parent keeps the old page');
  unpinUserPages(c.mm, pin);
});

t.test('fork: the child shares every open file through a copy of the fd table; closing one side\'s fd leaves the other\'s', async (t) => {
  const h = host();
  const p = h.spawn({ uid: 1234, memlockLimit: 12345 * PAGE });
  const efd = p.eventfd();
  const c = forked(p);
  t.equal(c.file(efd), p.file(efd), 'the same struct file');
  t.equal(c.uid, 1234);
  t.equal(c.user, p.user, 'the same user_struct');
  t.equal(c.memlockLimit, p.memlockLimit, 'rlimits are inherited');
  t.equal(c.write(efd, new Uint8Array([3, 0, 0, 0, 0, 0, 0, 0])), 8);
  t.equal(c.close(efd), 0);
  const r = p.read(efd, 8) as Uint8Array;
  t.equal(r[0], 3, 'the parent reads what the child wrote, after the child closed its fd');
  p.exit();
  t.ok(c.alive, 'the child outlives its parent');
});

t.test('fork of an exited process throws (it makes no calls); a live one gets a child (CONTRACT.md: fork(): Process)', async (t) => {
  const m = createMachine('q35-vtd');
  const p = m.host.spawn();
  const c = p.fork();
  t.ok(c.pid > p.pid, 'a child with its own pid');
  p.exit();
  t.throws(() => p.fork(), /has exited/);
  c.exit();
});
