import t from 'tap';
import { runFailNth } from '../../../tools/fault/fail-nth.ts';
import { iommufdMapAttach, svaBind, vfioMapDma } from './ops.ts';

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  for (const op of [vfioMapDma(kind), iommufdMapAttach(kind), svaBind(kind)]) {
    t.test(`${op.name}: every failed step unwinds with an errno and breaks no invariant`, async (t) => {
      const r = runFailNth(op as Parameters<typeof runFailNth>[0]);
      t.ok(r.completed, 'the uninjected run succeeds');
      t.ok(r.steps >= 1, `${r.steps} steps exercised (${JSON.stringify(r.byPoint)})`);
      t.same(r.problems, [], 'no exception, no invariant violated');
      for (const rec of r.records) if (typeof rec.result === 'number' && rec.point?.startsWith('vfio.')) t.ok(rec.result < 0, `${rec.point} failed the call`);
    });
  }
}
