import t from 'tap';
import { POLLIN, POLLOUT } from '../../src/uapi/poll.ts';
import { Board } from '../../machines/board.ts';
import { Host } from '../../src/host/host.ts';
import { EBADF, EFAULT, EINVAL, ENOENT, ENOMEM, ENOTTY, EAGAIN } from '../../src/uapi/errno.ts';
import { PROT_READ, PROT_WRITE } from '../../src/host/mm.ts';
import { pinUserPages, unpinUserPages, contiguousRuns, accountLockedVm } from '../../src/host/pin.ts';

const MIB = 2 ** 20;
for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  const make = () => {
    const board = new Board(kind, { ramBytes: 256 * MIB });
    const host = new Host(board);
    const idle = host.allocator.pagesInUse;
    return { board, host, idle, p: host.spawn() };
  };

  t.test(`${kind}: anonymous memory reads zero, is paged in on demand, and lives in the CPU page table`, async (t) => {
    const { host, p } = make();
    const base = host.allocator.pagesInUse;
    const a = p.mmap(3 * 4096);
    t.ok(a > 0n);
    t.equal(host.allocator.pagesInUse, base, 'nothing allocated until touched');
    t.same(p.memRead(a + 4096n, 4), new Uint8Array(4));
    t.equal(p.memWrite(a + 4094n, new Uint8Array([1, 2, 3, 4])), 4, 'a write across a page boundary');
    t.same(p.memRead(a + 4094n, 4), new Uint8Array([1, 2, 3, 4]));
    t.ok(p.mm.pgtable.iovaToPhys(Number(a) + 4096) >= 0, 'the page is mapped in the process page table');
    t.equal(p.mm.residentPages, 2);
  });

  t.test(`${kind}: unmapped addresses and forbidden accesses give EFAULT`, async (t) => {
    const { p } = make();
    t.equal(p.memRead(0x1000n, 4), -EFAULT);
    const ro = p.mmap(4096, { prot: PROT_READ });
    t.equal(p.memWrite(ro, new Uint8Array(1)), -EFAULT);
    t.ok(p.memRead(ro, 1) instanceof Uint8Array);
    t.equal(p.mprotect(ro, 4096, PROT_READ | PROT_WRITE), 0);
    t.equal(p.memWrite(ro, new Uint8Array(1)), 1);
  });

  t.test(`${kind}: hugepage mmap is backed by aligned contiguous 2 MiB runs`, async (t) => {
    const { p } = make();
    const a = p.mmap(4 * MIB, { hugepage: '2M', populate: true });
    t.equal(a % BigInt(2 * MIB), 0n);
    const pin = pinUserPages(p.mm, Number(a), 1024, true);
    if (typeof pin === 'number') throw new Error('pin failed');
    const runs = contiguousRuns(pin);
    t.ok(runs.length <= 2 && runs.every(([, n]) => n % 512 === 0), `runs ${JSON.stringify(runs)}`);
    t.equal(pin.pas[0]! % (2 * MIB), 0);
    unpinUserPages(p.mm, pin);
    t.equal(p.munmap(a + 4096n, 4096), -EINVAL, 'cannot cut a huge page');
  });

  t.test(`${kind}: pinned pages outlive munmap and exit until unpinned; nothing leaks`, async (t) => {
    const { host, p, idle } = make();
    const a = p.mmap(8 * 4096);
    p.memWrite(a, new Uint8Array([7]));
    const pin = pinUserPages(p.mm, Number(a), 8, true);
    if (typeof pin === 'number') throw new Error('pin failed');
    t.equal(p.mm.pinnedVm, 8);
    const pa = pin.pas[0]!;
    t.equal(p.munmap(a, 8 * 4096), 0);
    t.equal(host.platform.sysmem.read8(pa), 7, 'still there for the device');
    p.exit();
    t.equal(host.allocator.pagesInUse, idle + 8, 'only the pinned pages still allocated');
    unpinUserPages(p.mm, pin);
    t.equal(host.allocator.pagesInUse, idle, 'every page back, page tables included');
    t.equal(host.platform.sysmem.read8(pa), 0, 'freed memory reads zero');
  });

  t.test(`${kind}: a pin that fails part-way leaves nothing pinned`, async (t) => {
    const { host, p, idle } = make();
    const a = p.mmap(2 * 4096, { prot: PROT_READ });
    t.equal(pinUserPages(p.mm, Number(a), 2, true), -EFAULT, 'write pin of read-only memory');
    t.equal(pinUserPages(p.mm, Number(a), 3, false), -EFAULT, 'runs past the mapping');
    t.equal(p.mm.pinnedVm, 0);
    host.platform.faults.failNth('host.page_alloc', 2);
    const b = p.mmap(4 * 4096);
    t.equal(pinUserPages(p.mm, Number(b), 4, true), -ENOMEM);
    t.equal(p.mm.pinnedVm, 0);
    p.exit();
    t.equal(host.allocator.pagesInUse, idle, 'no reference left behind by the failed pins');
  });

  t.test(`${kind}: locked memory is charged against RLIMIT_MEMLOCK unless CAP_IPC_LOCK`, async (t) => {
    const { host } = make();
    const p = host.spawn({ memlockLimit: 16 * 4096 });
    t.equal(accountLockedVm(p, 16, true), 0);
    t.equal(accountLockedVm(p, 1, true), -ENOMEM);
    t.equal(p.mm.lockedVm, 16, 'a refused charge changes nothing');
    accountLockedVm(p, 16, false);
    t.equal(p.mm.lockedVm, 0);
    const root = host.spawn({ memlockLimit: 0, capIpcLock: true });
    t.equal(accountLockedVm(root, 1000, true), 0);
  });
}

t.test('file descriptors: lowest free from 3, EBADF after close, ENOTTY without ioctl, ENOENT for no node', async (t) => {
  const host = new Host(new Board('q35-vtd', { ramBytes: 64 * MIB }));
  const p = host.spawn();
  t.equal(p.open('/dev/nothing'), -ENOENT);
  const e1 = p.eventfd(0);
  const e2 = p.eventfd(5);
  t.same([e1, e2], [3, 4]);
  t.equal(p.close(e1), 0);
  t.equal(p.close(e1), -EBADF);
  t.equal(p.eventfd(), 3, 'lowest free descriptor reused');
  t.equal(p.ioctl(e2, 0x1234, 0), -ENOTTY);
  t.equal(p.ioctl(99, 0x1234, 0), -EBADF);
  t.equal(p.read(42, 8), -EBADF);
});

t.test('eventfd counts writes and signals, read resets, EAGAIN when zero', async (t) => {
  const host = new Host(new Board('q35-vtd', { ramBytes: 64 * MIB }));
  const p = host.spawn();
  const fd = p.eventfd(2);
  const one = new Uint8Array(8);
  one[0] = 3;
  t.equal(p.write(fd, one), 8);
  const r = p.read(fd, 8) as Uint8Array;
  t.equal(r[0], 5);
  t.equal(p.read(fd, 8), -EAGAIN);
  t.equal(p.file(fd)!.poll!(), POLLOUT, 'poll at zero: writable only');
  t.equal(p.write(fd, one), 8);
  t.equal(p.file(fd)!.poll!(), POLLIN | POLLOUT, 'poll with a count: readable');
  t.equal(p.read(fd, 4), -EINVAL);
  t.equal(p.write(fd, new Uint8Array(8).fill(0xff)), -EINVAL);
});

t.test('exit closes every fd and frees the address space', async (t) => {
  const host = new Host(new Board('virt-smmuv3', { ramBytes: 64 * MIB }));
  const before = host.allocator.pagesInUse;
  const p = host.spawn();
  const a = p.mmap(64 * 4096, { populate: true });
  t.ok(a > 0n);
  p.eventfd();
  p.exit();
  t.equal(host.allocator.pagesInUse, before);
  t.notOk(host.processes.has(p.pid));
  t.equal(p.open('/dev/iommu'), -EBADF);
});
