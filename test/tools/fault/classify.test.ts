/**
 * Campaign classification (issue 9): staleness the architecture permits
 * (a corrupted-but-valid STE kept until CFGI, a stale IOTLB after an
 * invalidation that never executed) is its own outcome, 'permitted'; real
 * violations stay violations.
 */
import t from 'tap';
import { createMachine, type Machine } from '../../../machines/machine.ts';
import type { MachineKind } from '../../../machines/layout.ts';
import { classifyViolations, type InjectionRecord } from '../../../tools/fault/classify.ts';
import { checkInvariants, formatViolations, monitorUnmaps } from '../../../tools/fault/invariants.ts';
import { planOnOperation } from '../../../tools/campaign/scenarios.ts';
import { PAGE, vfioContainer } from './ops.ts';

t.test('virt-smmuv3: a corrupted-but-valid STE kept in the configuration cache is "permitted", naming CFGI', async (t) => {
  const r = planOnOperation({ kind: 'virt-smmuv3', plan: { seed: 1, rules: [{ point: 'smmuv3.ste_fetch', when: { nth: 1 }, action: { kind: 'corrupt', xorLo: 0x10 } }] } });
  t.equal(r.outcome, 'permitted', r.detail ?? '');
  t.match(r.detail ?? '', /configuration cache until CMD_CFGI/);
  t.same(r.injected, { 'smmuv3.ste_fetch': 1 });
});

/** VFIO maps 4 pages, a DMA fills the IOTLB, then an unmap runs whose invalidation never executes (the IOTLB keeps the entry). */
function staleAfterUnmap(kind: MachineKind): { m: Machine; records: InjectionRecord[] } {
  const m = createMachine(kind);
  monitorUnmaps(m);
  const c = vfioContainer(m, '0000:00:03.0');
  const buf = c.p.mmap(4 * PAGE);
  c.p.memWrite(buf, new Uint8Array(4 * PAGE).fill(7));
  c.v.mapDma(c.container, { vaddr: buf, iova: 0x40_0000n, size: 4 * PAGE });
  const dev = m.device('0000:00:03.0');
  dev.config.write(4, 2, 6);
  t.ok(dev.dmaRead(0x40_0000n, 8).ok, 'the mapped IOVA translates (and is now cached)');
  const records: InjectionRecord[] = [];
  m.board.faults.onInjection((p, a) => void records.push({ point: p.name, action: a.kind }));
  // The unmap's invalidations do not execute: on SMMUv3 the first command's opcode is corrupted into an illegal
  // one (CERROR_ILL, which the driver skips as Linux does); on VT-d the queue skips its descriptors.
  let once = false;
  if (kind === 'virt-smmuv3') {
    m.board.faults.point('smmuv3.cmdq_process').arm(() => {
      if (once) return undefined;
      once = true;
      return { kind: 'corrupt', xorLo: 0x80 };
    });
  } else m.board.faults.point('vtd.inv_queue_process').arm(() => ({ kind: 'drop' }));
  c.v.unmapDma(c.container, { iova: 0x40_0000n, size: 4 * PAGE });
  m.board.faults.disarmAll();
  m.run();
  return { m, records };
}

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: a stale IOTLB after a dropped invalidation is permitted; the same staleness with nothing to explain it is a violation`, async (t) => {
    const a = staleAfterUnmap(kind);
    const v = checkInvariants(a.m);
    t.ok(v.some((x) => x.kind === 'stale-iotlb'), `the unmapped IOVA still translates through the cache: ${formatViolations(v)}`);
    const c = classifyViolations(a.m, v, a.records);
    t.equal(c.outcome, 'permitted');
    if (c.outcome === 'permitted') t.match(c.reasons.join(), /did not execute/);
    t.same(checkInvariants(a.m), [], 'after the flush the machine is consistent');

    const b = staleAfterUnmap(kind);
    const vb = checkInvariants(b.m);
    t.equal(classifyViolations(b.m, vb, []).outcome, 'violated', 'a stale IOTLB nobody explains is a driver bug');
    const d = staleAfterUnmap(kind);
    const cd = classifyViolations(d.m, checkInvariants(d.m), [], { skippedInvalidation: 'the test drops the TLBI of its unmap' });
    t.equal(cd.outcome, 'permitted', 'a driver that skips an invalidation on purpose gets what it asked for');
  });
}

t.test('a leak or an accounting error is never excused by a cache-explaining injection', async (t) => {
  const m = createMachine('virt-smmuv3');
  const c = vfioContainer(m);
  const buf = c.p.mmap(PAGE);
  c.p.memWrite(buf, new Uint8Array([1]));
  m.host.pages.get(c.p.mm.headOf(Number(buf))!);
  const v = checkInvariants(m);
  t.ok(v.some((x) => x.kind === 'page-refs'));
  const r = classifyViolations(m, v, [{ point: 'smmuv3.ste_fetch', action: 'corrupt' }]);
  t.equal(r.outcome, 'violated');
});

t.test('an injection that cannot leave a cache stale explains nothing', async (t) => {
  const m = createMachine('q35-vtd');
  const v = [{ kind: 'translation' as const, message: 'synthetic' }];
  t.equal(classifyViolations(m, v, [{ point: 'host.page_alloc', action: 'fail' }]).outcome, 'violated');
  t.equal(classifyViolations(m, v, [{ point: 'vtd.context_fetch', action: 'fail' }]).outcome, 'violated', 'a failed fetch caches nothing');
  t.equal(classifyViolations(m, [], []).outcome, 'clean');
});
