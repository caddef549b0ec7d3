import t from 'tap';
import { createMachine } from '../../../machines/machine.ts';
import { checkInvariants, formatViolations, guard, monitorUnmaps, recordBaseline } from '../../../tools/fault/invariants.ts';
import { PAGE, vfioContainer } from './ops.ts';

t.test('a healthy VFIO mapping satisfies every invariant, live and after exit', async (t) => {
  const m = createMachine('virt-smmuv3');
  recordBaseline(m);
  monitorUnmaps(m);
  const c = vfioContainer(m);
  const buf = c.p.mmap(8 * PAGE);
  c.p.memWrite(buf, new Uint8Array([9, 8, 7]));
  t.equal(c.v.mapDma(c.container, { vaddr: buf, iova: 0x40_0000n, size: 8 * PAGE }), 0);
  t.equal(formatViolations(checkInvariants(m)), '');
  t.equal(c.v.unmapDma(c.container, { iova: 0x40_0000n, size: 8 * PAGE }), BigInt(8 * PAGE));
  t.equal(formatViolations(checkInvariants(m)), '');
  c.p.exit();
  m.run();
  t.equal(formatViolations(checkInvariants(m)), '');
});

t.test('a page allocated and never freed is a leak once every process exited', async (t) => {
  const m = createMachine('q35-vtd');
  recordBaseline(m);
  m.host.allocator.allocPage();
  const v = checkInvariants(m);
  t.equal(v.length, 1);
  t.equal(v[0]!.kind, 'page-leak');
});

t.test('a pin reference nobody holds, and locked_vm nobody charged, are caught', async (t) => {
  const m = createMachine('virt-smmuv3');
  const c = vfioContainer(m);
  const buf = c.p.mmap(PAGE);
  c.p.memWrite(buf, new Uint8Array([1]));
  m.host.pages.get(c.p.mm.headOf(Number(buf))!);
  c.p.mm.lockedVm += 3;
  const kinds = checkInvariants(m).map((x) => x.kind).sort();
  t.same(kinds, ['locked-vm', 'page-refs']);
});

t.test('an IOMMU entry left behind by an unmap is caught', async (t) => {
  const m = createMachine('q35-vtd');
  monitorUnmaps(m);
  const c = vfioContainer(m);
  const buf = c.p.mmap(2 * PAGE);
  t.equal(c.v.mapDma(c.container, { vaddr: buf, iova: 0x40_0000n, size: 2 * PAGE }), 0);
  // Break the domain behind VFIO's back: an entry at an IOVA VFIO reports unmapped.
  const domain = m.host.iommu.groupOf(m.device('0000:00:01.0'))!.domain!;
  t.equal(domain.map(0x80_0000, 0x1000_0000, PAGE, 3), 0, 'a stray mapping behind VFIO\'s back');
  m.board.tracer.trace('vfio.unmap', 'vfio', { iova: 0x80_0000, size: PAGE });
  const v = checkInvariants(m);
  t.ok(v.some((x) => x.kind === 'unmapped-translates' || x.kind === 'stale-iotlb'), formatViolations(v));
});

t.test('an exception inside a guarded call is reported, not thrown', async (t) => {
  const m = createMachine('virt-smmuv3');
  const r = guard(m, () => m.host.allocator.freePage(0x1234000));
  t.ok('exception' in r);
  t.ok(checkInvariants(m).some((x) => x.kind === 'exception'));
});
