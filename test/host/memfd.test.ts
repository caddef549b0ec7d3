/**
 * memfd_create(2) and ftruncate(2) in the process API (mm/memfd.c, mm/shmem.c):
 * anonymous file memory whose page cache every MAP_SHARED mapping shares,
 * MAP_PRIVATE copies on write, truncation zaps, and whose pages go back when
 * neither an fd nor a mapping holds the file.
 */
import t from 'tap';
import { Board } from '../../machines/board.ts';
import { Host } from '../../src/host/host.ts';
import { EBADF, EFAULT, EINVAL } from '../../src/uapi/errno.ts';
import { MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_EXEC, MFD_HUGETLB, MFD_NOEXEC_SEAL } from '../../src/uapi/memfd.ts';

const PAGE = 4096;
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | number) => (typeof b === 'number' ? `errno ${b}` : new TextDecoder().decode(b));

function host() {
  const board = new Board('q35-vtd', { ramBytes: 64 * 2 ** 20 });
  return new Host(board);
}

t.test('memfd_create: flags within MFD_ALL_FLAGS, not EXEC with NOEXEC_SEAL (sanitize_flags), a name of at most 249 bytes; ftruncate rules', async (t) => {
  const h = host();
  const p = h.spawn();
  t.ok(p.memfd_create('buf') >= 3);
  t.ok(p.memfd_create('buf', MFD_CLOEXEC | MFD_ALLOW_SEALING) >= 3);
  t.equal(p.memfd_create('buf', 1 << 8), -EINVAL, 'unknown flag');
  t.equal(p.memfd_create('buf', MFD_EXEC | MFD_NOEXEC_SEAL), -EINVAL);
  t.equal(p.memfd_create('x'.repeat(249)) >= 3, true, '249 bytes');
  t.equal(p.memfd_create('x'.repeat(250)), -EINVAL, '250 bytes (MFD_NAME_MAX_LEN)');
  t.equal(p.memfd_create('h', MFD_HUGETLB), -EINVAL, 'hugetlbfs memfds are not modelled');
  const fd = p.memfd_create('sized');
  t.equal(p.ftruncate(fd, -1), -EINVAL);
  t.equal(p.ftruncate(99, 4096), -EBADF);
  t.equal(p.ftruncate(p.eventfd(), 4096), -EINVAL, 'not a regular file');
  t.equal(p.ftruncate(fd, 3 * PAGE), 0);
});

t.test('memfd: MAP_SHARED mappings, read/write/pread/pwrite and a forked child all reach the same pages; past the end is SIGBUS (EFAULT)', async (t) => {
  const h = host();
  const p = h.spawn();
  const fd = p.memfd_create('shared');
  t.equal(p.ftruncate(fd, 2 * PAGE), 0);
  const a = p.mmap(2 * PAGE, { fd, shared: true });
  const b = p.mmap(PAGE, { fd, offset: BigInt(PAGE) });
  t.ok(a > 0n && b > 0n);
  t.equal(p.memWrite(a + BigInt(PAGE), text('one page')), 8);
  t.equal(str(p.memRead(b, 8)), 'one page', 'the second mapping maps the same page');
  t.equal(str(p.pread(fd, 8, BigInt(PAGE))), 'one page', 'pread reads the page cache');
  t.equal(p.pwrite(fd, text('via pwrite'), 16n), 10);
  t.equal(str(p.memRead(a + 16n, 10)), 'via pwrite');
  t.same(p.memRead(a + 100n, 4), new Uint8Array(4), 'untouched bytes read as zeros');
  t.equal(p.mm.physOf(Number(a) + PAGE), p.mm.physOf(Number(b)), 'one physical page');
  const c = p.mmap(4 * PAGE, { fd });
  t.equal(p.memRead(c + BigInt(2 * PAGE), 1), -EFAULT, 'past the end of the file');
  const child = p.fork();
  t.equal(child.memWrite(a, text('child')), 5);
  t.equal(str(p.memRead(a, 5)), 'child', 'a shared mapping stays shared across fork');
  t.equal(str(child.read(fd, 5)), 'child', 'the child reads the same file');
  t.equal(str(p.read(fd, 15)).slice(11), 'via ', 'the parent reads on from where the child stopped: one struct file, one position');
});

t.test('memfd: MAP_PRIVATE reads the file and copies on write; the file and shared mappings never see the copy', async (t) => {
  const h = host();
  const p = h.spawn();
  const fd = p.memfd_create('private');
  t.equal(p.ftruncate(fd, PAGE), 0);
  t.equal(p.pwrite(fd, text('original'), 0n), 8);
  const shared = p.mmap(PAGE, { fd });
  const priv = p.mmap(PAGE, { fd, shared: false });
  t.equal(str(p.memRead(priv, 8)), 'original');
  t.equal(str(p.memRead(shared, 8)), 'original');
  t.equal(p.mm.physOf(Number(priv)), p.mm.physOf(Number(shared)), 'read: the page cache page');
  t.equal(p.memWrite(priv, text('PRIVATE')), 7);
  t.equal(str(p.memRead(priv, 8)), 'PRIVATEl');
  t.equal(str(p.memRead(shared, 8)), 'original', 'the shared mapping keeps the file');
  t.equal(str(p.pread(fd, 8, 0n)), 'original');
  t.not(p.mm.physOf(Number(priv)), p.mm.physOf(Number(shared)), 'the write got a page of its own');
});

t.test('memfd: shrinking zaps the pages past the end from every mapping (SIGBUS there) and zeroes the tail of the last page; the pages go back when the last holder goes', async (t) => {
  const h = host();
  const p = h.spawn();
  const base = h.allocator.pagesInUse;
  const fd = p.memfd_create('shrink');
  t.equal(p.ftruncate(fd, 3 * PAGE), 0);
  const a = p.mmap(3 * PAGE, { fd });
  t.equal(p.memWrite(a, new Uint8Array(3 * PAGE).fill(0x5a)), 3 * PAGE);
  t.equal(p.ftruncate(fd, PAGE + 10), 0);
  t.equal(p.memRead(a + BigInt(2 * PAGE), 1), -EFAULT, 'the third page is gone');
  t.same(p.memRead(a + BigInt(PAGE) + 8n, 4), new Uint8Array([0x5a, 0x5a, 0, 0]), 'bytes past the new end are zeros');
  t.same(p.memRead(a, 2), new Uint8Array([0x5a, 0x5a]));
  t.equal(p.ftruncate(fd, 3 * PAGE), 0, 'growing again');
  t.same(p.memRead(a + BigInt(2 * PAGE), 2), new Uint8Array(2), 'a hole reads as zeros');
  t.equal(p.close(fd), 0);
  t.same(p.memRead(a, 1), new Uint8Array([0x5a]), 'the mapping holds the file after close');
  t.equal(p.munmap(a, 3 * PAGE), 0);
  t.equal(h.memfds.size, 0, 'released with its last holder');
  t.equal(h.allocator.pagesInUse, base, 'every page back');
});
