import t from 'tap';
import { FaultInjector, NO_ACTIONS, type InjectionAction, type InjectionActionKind } from '../../src/fault/injector.ts';
import { HOST_INJECTION_POINTS } from '../../src/host/points.ts';

t.test('every defined point exists with its description and starts disarmed', async (t) => {
  const f = new FaultInjector();
  t.equal(f.all().length, 0, 'an injector starts empty');
  const defined = f.define(HOST_INJECTION_POINTS);
  t.same(f.all().map((p) => p.name), Object.keys(HOST_INJECTION_POINTS));
  for (const p of f.all()) {
    const spec = HOST_INJECTION_POINTS[p.name as keyof typeof HOST_INJECTION_POINTS];
    t.equal(p.description, spec.description);
    t.equal(defined[p.name as keyof typeof HOST_INJECTION_POINTS], p);
    t.same(p.actions, ['fail'], 'a host allocation or pin can only fail');
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
  t.same(f.define({ 'dev.any': 'a bare description' })['dev.any'].actions, ['fail', 'drop', 'delay', 'corrupt'], 'a bare description takes every action');
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

t.test('an injection counts only when the code can carry it out and it changes something', async (t) => {
  const f = new FaultInjector();
  const p = f.define({ 'dev.msg': { description: 'a message: lost, late or with its 9-bit tag flipped', actions: ['drop', 'delay', 'corrupt'], corruptMask: [0x1ff, 0] } })['dev.msg'];
  const seen: string[] = [];
  f.onInjection((pt, a) => seen.push(`${pt.name}:${a.kind}`));
  let next: InjectionAction | undefined;
  let offered: readonly string[] = [];
  p.arm((_hit, _ctx, can) => ((offered = can), next));
  const tryAction = (a: InjectionAction, can?: readonly InjectionActionKind[]) => ((next = a), p.check(undefined, can));
  t.equal(tryAction({ kind: 'fail' }), undefined, 'an action the point does not declare');
  t.same(offered, ['drop', 'delay', 'corrupt'], 'the hook is offered the declared actions');
  t.equal(tryAction({ kind: 'delay', ns: 0 }), undefined, 'a delay of 0 ns');
  t.equal(tryAction({ kind: 'corrupt', xorLo: 0x200 }), undefined, 'a corruption of bits the code does not use');
  t.equal(tryAction({ kind: 'drop' }, NO_ACTIONS), undefined, 'a hit where the code can do nothing');
  t.equal(tryAction({ kind: 'delay', ns: 5 }, ['drop']), undefined, 'a hit where the code can only drop');
  t.equal(p.injected, 0);
  t.same(seen, [], 'nothing traced');
  t.same(tryAction({ kind: 'corrupt', xorLo: 0x201 }), { kind: 'corrupt', xorLo: 0x201 });
  t.same(tryAction({ kind: 'drop' }, ['drop']), { kind: 'drop' });
  t.equal(p.injected, 2);
  t.same(seen, ['dev.msg:corrupt', 'dev.msg:drop']);
});

t.test('fail-nth counts as steps only the hits that can fail', async (t) => {
  const f = new FaultInjector();
  const pts = f.define({ 'dev.alloc': { description: 'an allocation fails', actions: ['fail'] }, 'dev.msg': { description: 'a message is lost', actions: ['drop'] } });
  f.failNthGlobal(2);
  t.equal(pts['dev.msg'].check(), undefined, 'a point that cannot fail is no step');
  t.equal(pts['dev.alloc'].check(), undefined, 'step 1');
  t.equal(pts['dev.msg'].check(), undefined);
  t.same(pts['dev.alloc'].check(), { kind: 'fail' }, 'step 2 fails');
  t.notOk(pts['dev.msg'].armed, 'the point that cannot fail was left alone');
});
