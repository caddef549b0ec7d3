import t from 'tap';
import { FaultInjector } from '../../src/fault/injector.ts';
import { HOST_INJECTION_POINTS } from '../../src/host/points.ts';

t.test('every defined point exists with its description and starts disarmed', async (t) => {
  const f = new FaultInjector();
  t.equal(f.all().length, 0, 'an injector starts empty');
  const defined = f.define(HOST_INJECTION_POINTS);
  t.same(f.all().map((p) => p.name), Object.keys(HOST_INJECTION_POINTS));
  for (const p of f.all()) {
    t.equal(p.description, HOST_INJECTION_POINTS[p.name as keyof typeof HOST_INJECTION_POINTS]);
    t.equal(defined[p.name as keyof typeof HOST_INJECTION_POINTS], p);
    t.same(p.actions, ['fail', 'drop', 'delay', 'corrupt'], 'a bare description takes every action');
    t.notOk(p.armed);
    t.equal(p.check(), undefined);
  }
});

t.test('define is idempotent for the same table and refuses a conflicting or malformed one', async (t) => {
  const f = new FaultInjector();
  const a = f.define({ 'dev.step': { description: 'a step fails', actions: ['fail'] } });
  const b = f.define({ 'dev.step': { description: 'a step fails', actions: ['fail'] } });
  t.equal(a['dev.step'], b['dev.step'], 'the second definer shares the point');
  t.throws(() => f.define({ 'dev.step': 'another text' }), /already defined differently/);
  t.throws(() => f.define({ 'dev.step': { description: 'a step fails', actions: ['fail', 'drop'] } }), /already defined differently/);
  t.throws(() => f.define({ NoDots: 'x' }), /dotted lower-case/);
  t.throws(() => f.point('dev.other'), /no injection point "dev.other"/);
  t.equal(f.find('dev.other'), undefined);
  t.throws(() => f.failNth('dev.other', 1), /no injection point/);
});

t.test('failNth fires exactly once on the nth hit from now and reports it', async (t) => {
  const f = new FaultInjector();
  f.define(HOST_INJECTION_POINTS);
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
