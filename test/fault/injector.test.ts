import t from 'tap';
import { FaultInjector } from '../../src/fault/injector.ts';
import { INJECTION_POINTS } from '../../src/fault/points.ts';

t.test('every declared point exists with its description and starts disarmed', async (t) => {
  const f = new FaultInjector();
  t.equal(f.all().length, Object.keys(INJECTION_POINTS).length);
  for (const p of f.all()) {
    t.equal(p.description, INJECTION_POINTS[p.name]);
    t.notOk(p.armed);
    t.equal(p.check(), undefined);
  }
});

t.test('failNth fires exactly once on the nth hit from now and reports it', async (t) => {
  const f = new FaultInjector();
  const p = f.point('host.page_alloc');
  p.check();
  const seen: string[] = [];
  f.onInjection((pt, a, ctx) => seen.push(`${pt.name}:${a.kind}:${JSON.stringify(ctx)}`));
  f.failNth('host.page_alloc', 3, { kind: 'fail', errno: 12 });
  t.equal(p.check(), undefined);
  t.equal(p.check(), undefined);
  t.same(p.check({ order: 0 }), { kind: 'fail', errno: 12 });
  t.equal(p.check(), undefined);
  t.same(seen, ['host.page_alloc:fail:{"order":0}']);
  f.disarmAll();
  t.notOk(p.armed);
});
