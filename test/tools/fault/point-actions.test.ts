/**
 * Issue 20, "plans tell the truth": every action a built-in point declares
 * changes the run when it is injected. For each point and each of its
 * actions, the point's scenario (point-scenarios.ts) runs twice from the
 * moment it arms the point: once injecting that action at one hit that can
 * take it, once injecting nothing. What the scenario's calls returned or what
 * the machine did afterwards (every trace event but fault.inject, the
 * counters, the virtual time, guest memory) must differ, and the point must count exactly one injection. A
 * point declaring an action its code ignores fails here.
 */
import t from 'tap';
import { createMachine, type Machine } from '../../../machines/machine.ts';
import { INJECTION_POINTS, type InjectionPointName } from '../../../machines/points.ts';
import type { InjectionAction, InjectionActionKind } from '../../../src/fault/injector.ts';
import { guard } from '../../../tools/fault/invariants.ts';
import { defaultAction } from '../../../tools/campaign/scenarios.ts';
import { toInjectionAction } from '../../../src/fault/plan.ts';
import { POINT_SCENARIOS, type Arm, type PointScenario } from './point-scenarios.ts';

/** A corruption flips a bit the point's code acts on (default bit 0); the other actions are the sweep's (a 50 us delay). */
const CORRUPT_BIT: Partial<Record<InjectionPointName, number>> = {
  'smmuv3.ste_fetch': 1 << 4,
  'vtd.pasid_fetch': 1 << 6,
  'dma-engine.ats.completion': 0x1000,
};

function actionOf(point: InjectionPointName, kind: InjectionActionKind): InjectionAction {
  const bit = CORRUPT_BIT[point];
  if (kind === 'corrupt' && bit !== undefined) return { kind, xorLo: bit };
  return toInjectionAction(defaultAction(kind, { name: point, ...INJECTION_POINTS[point], corruptMask: [1, 0] }));
}

const toJson = (x: unknown) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

/** FNV-1a over every resident frame of guest RAM, with its offset. */
function memoryDigest(m: Machine): string {
  const ram = m.board.ram;
  let h = 0x811c9dc5;
  for (const off of ram.residentOffsets()) {
    const f = ram.peekFrame(off)!;
    h = Math.imul(h ^ (off / 4096), 0x01000193) >>> 0;
    for (let i = 0; i < f.length; i++) h = Math.imul(h ^ f[i]!, 0x01000193) >>> 0;
  }
  return h.toString(16);
}

/** Run the scenario; from the moment it arms, record what the machine does; inject `action` at the first hit that can take it (or nothing). */
function observe(sc: PointScenario, point: InjectionPointName, action: InjectionAction | undefined): { seen: string[]; injected: number } {
  const m = createMachine(sc.machine, { smmuPri: 'posted-series' });
  const events: string[] = [];
  let armedOn: Machine | undefined;
  const arm: Arm = (target = m) => {
    armedOn = target;
    target.board.tracer.on('*', (r) => {
      if (r.name !== 'fault.inject') events.push(toJson(r));
    });
    let fired = false;
    target.board.faults.point(point).arm((_hit, _ctx, can) => {
      if (fired || action === undefined || !can.includes(action.kind)) return undefined;
      fired = true;
      return action;
    });
  };
  const g = guard(m, () => sc.run(m, arm));
  const on = armedOn ?? m;
  const seen = [
    `returned ${'value' in g ? toJson(g.value) : ''}`,
    `events ${toJson(events)}`,
    `counters ${toJson(on.board.counters.snapshot())}`,
    `virtual time ${on.now()}`,
    `memory ${memoryDigest(on)}`,
    `exception ${'exception' in g ? g.exception.split('\n')[0] : ''}`,
  ];
  return { seen, injected: on.board.faults.point(point).injected };
}

const names = Object.keys(INJECTION_POINTS) as InjectionPointName[];
for (const point of names) {
  const actions = INJECTION_POINTS[point].actions as readonly InjectionActionKind[];
  const sc = (POINT_SCENARIOS[point] ?? [])[0];
  if (sc === undefined) continue; // points-coverage.test.ts fails for a point without a scenario
  t.test(`${point}: each declared action (${actions.join(', ')}) changes the run on ${sc.machine}`, async (t) => {
    const control = observe(sc, point, undefined);
    t.equal(control.injected, 0, 'the control run injects nothing');
    for (const kind of actions) {
      const r = observe(sc, point, actionOf(point, kind));
      t.equal(r.injected, 1, `${kind}: counted once`);
      const differs = r.seen.filter((x, i) => x !== control.seen[i]).map((x) => x.split(' ')[0]);
      t.ok(differs.length > 0, `${kind}: the machine did something else than without it${differs.length ? ` (${differs.join(', ')} differ)` : ''}`);
    }
  });
}
