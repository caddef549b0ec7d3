/**
 * Injection points against issue 9's list: every item of the list has at
 * least one registered point, every registered point has a scenario, and in
 * that scenario the armed point fires, leaves a fault.inject trace event and
 * lets no exception escape the emulated kernel or a model.
 */
import t from 'tap';
import { createMachine, type Machine } from '../../../machines/machine.ts';
import type { InjectionPointName } from '../../../machines/points.ts';
import { guard } from '../../../tools/fault/invariants.ts';
import { INJECTION_POINTS } from '../../../machines/points.ts';
import { ISSUE_ITEMS, POINT_SCENARIOS, type Arm } from './point-scenarios.ts';

const registered = Object.keys(INJECTION_POINTS) as InjectionPointName[];

t.test('every item of issue 9\'s list is served by registered, described injection points', async (t) => {
  for (const [item, points] of Object.entries(ISSUE_ITEMS)) {
    t.ok(points.length > 0, item);
    for (const p of points) t.ok(p in INJECTION_POINTS && INJECTION_POINTS[p as InjectionPointName].description.length > 20, `${item}: ${p} is registered with a description`);
  }
});

t.test('every registered injection point has a scenario that hits it', async (t) => {
  t.same(registered.filter((p) => POINT_SCENARIOS[p] === undefined), [], 'points with no scenario');
});

for (const point of registered) {
  for (const sc of POINT_SCENARIOS[point] ?? []) {
    const action = sc.action ?? { kind: 'fail' as const };
    t.test(`${point} fires (${action.kind}) on ${sc.machine}: ${sc.what}`, async (t) => {
      // The PRI points of virt-smmuv3 are reached only with the posted SMMUv3 PRI series (mainline denies PRI).
      const m = createMachine(sc.machine, { smmuPri: 'posted-series' });
      const traced: string[] = [];
      let armedOn: Machine | undefined;
      const arm: Arm = (target = m) => {
        armedOn = target;
        target.board.tracer.on('fault.inject', (r) => void traced.push(r.args.point));
        let fired = false;
        target.board.faults.point(point).arm(() => {
          if (fired) return undefined;
          fired = true;
          return action;
        });
      };
      const g = guard(m, () => sc.run(m, arm));
      t.notOk('exception' in g, 'exception' in g ? g.exception : 'no exception');
      t.ok(armedOn !== undefined, 'the scenario armed the point');
      const p = armedOn!.board.faults.point(point);
      t.equal(p.injected, 1, `${point} injected once (${p.hits} hits)`);
      t.same(traced, [point], 'one fault.inject trace event names it');
    });
  }
}
