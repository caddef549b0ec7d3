import { INJECTION_POINTS } from '../../machines/points.ts';
import t from 'tap';
import { createMachine } from '../../machines/machine.ts';
import { FaultInjector } from '../../src/fault/injector.ts';
import { applyPlan, loadPlan, PlanError, validatePlan } from '../../src/fault/plan.ts';
import { Prng } from '../../src/sim/prng.ts';
import { PAGE, vfioContainer, vfioMapDma } from '../tools/fault/ops.ts';

t.test('a plan with an unknown point is refused, naming the valid points', async (t) => {
  const v = validatePlan({ rules: [{ point: 'smmuv3.walk_reed', action: { kind: 'fail' } }] }, Object.keys(INJECTION_POINTS));
  t.notOk(v.ok);
  if (!v.ok) {
    t.match(v.errors[0], /unknown injection point "smmuv3.walk_reed"/);
    t.match(v.errors[0], /smmuv3\.walk_read/);
    t.match(v.errors[0], /host\.page_alloc/);
  }
  t.ok(validatePlan({ rules: [{ point: 'smmuv3.walk_reed', action: { kind: 'fail' } }] }).ok, 'without a list of points, names wait for the machine');
});

t.test('applying a plan checks its points against the machine: another IOMMU\'s point and an unsupported action are refused', async (t) => {
  const m = createMachine('q35-vtd');
  t.throws(() => applyPlan(m, { rules: [{ point: 'smmuv3.walk_read', action: { kind: 'fail' } }] }), /unknown injection point "smmuv3.walk_read"/);
  m.board.faults.define({ 'test.only_fails': { description: 'a step that can only fail', actions: ['fail'] } });
  t.throws(() => applyPlan(m, { rules: [{ point: 'test.only_fails', action: { kind: 'delay', ns: 5 } }] }), /"test.only_fails" cannot delay \(it supports: fail\)/);
  t.doesNotThrow(() => applyPlan(m, { rules: [{ point: 'test.only_fails', action: { kind: 'fail' } }] }).disarm());
});

t.test('every problem of a plan is reported with its path', async (t) => {
  const v = validatePlan({
    seed: -1,
    rules: [
      { point: 'host.page_alloc', when: { nth: 0, probability: 2, match: { addrFrom: 10, addrTo: 5 } }, action: { kind: 'fail', errno: 'ENOPE' } },
      { point: 'vtd.msi', action: { kind: 'explode' }, extra: 1 },
    ],
  });
  t.notOk(v.ok);
  if (!v.ok) {
    const all = v.errors.join('\n');
    for (const re of [/plan\.seed/, /rules\[0\]\.when\.nth/, /rules\[0\]\.when\.probability/, /addrFrom must be below addrTo/, /unknown errno name "ENOPE"/, /rules\[1\]\.action\.kind/, /rules\[1\]: unknown field "extra"/]) {
      t.match(all, re);
    }
  }
  t.throws(() => loadPlan('{ not json'), PlanError);
  t.throws(() => loadPlan('{"rules": 3}'), /plan\.rules/);
});

t.test('nth, every, after, times and match pick the hits they name', async (t) => {
  const f = new FaultInjector();
  f.define(INJECTION_POINTS);
  const plan = loadPlan(
    JSON.stringify({
      rules: [
        { point: 'host.page_alloc', when: { nth: 2 }, action: { kind: 'fail', errno: 'ENOMEM' } },
        { point: 'vtd.walk_read', when: { every: 2, after: 1, times: 2 }, action: { kind: 'corrupt', xorLo: 1 } },
        { point: 'dma-engine.pri.response', when: { match: { device: 'dma1', pasid: 3, addrFrom: '0x1000', addrTo: 8192 } }, action: { kind: 'drop' } },
      ],
    }),
  );
  const applied = applyPlan(f, plan, new Prng(1));
  const pa = f.point('host.page_alloc');
  t.same([pa.check(), pa.check(), pa.check()], [undefined, { kind: 'fail', errno: 12 }, undefined]);
  const w = f.point('vtd.walk_read');
  const got = Array.from({ length: 8 }, () => w.check({ addr: 0 })?.kind ?? '-');
  t.same(got, ['-', '-', 'corrupt', '-', 'corrupt', '-', '-', '-'], 'after 1, every 2, at most twice');
  const r = f.point('dma-engine.pri.response');
  t.equal(r.check({ dev: 'dma0', pasid: 3, addr: 0x1000 }), undefined, 'other device');
  t.equal(r.check({ dev: 'dma1', pasid: 4, addr: 0x1000 }), undefined, 'other PASID');
  t.equal(r.check({ dev: 'dma1', pasid: 3, addr: 0x2000 }), undefined, 'past addrTo');
  t.same(r.check({ dev: 'dma1', pasid: 3, addr: 0x1fff }), { kind: 'drop' });
  t.same(applied.rules.map((x) => x.injected), [1, 2, 1]);
  applied.disarm();
  t.notOk(r.armed);
});

t.test('on a machine a BDF matches the names and requester IDs the points use', async (t) => {
  const m = createMachine('virt-smmuv3');
  applyPlan(m, { rules: [{ point: 'smmuv3.walk_read', when: { match: { device: '0000:00:02.0' } }, action: { kind: 'fail' } }] });
  const p = m.board.faults.point('dma-engine.ats.completion');
  t.notOk(p.armed);
  const walk = m.board.faults.point('smmuv3.walk_read');
  t.equal(walk.check({ sid: m.device('0000:00:01.0').requesterId }), undefined);
  t.same(walk.check({ sid: m.device('0000:00:02.0').requesterId }), { kind: 'fail' });
  t.same(walk.check({ dev: 'dma1' }), { kind: 'fail' });
});

/** One scenario under a probabilistic plan: the Chrome trace it leaves. */
function tracedRun(seed: number): string {
  const op = vfioMapDma('q35-vtd', 64);
  const m = createMachine('q35-vtd', { seed, trace: true });
  const s = op.setup(m);
  applyPlan(m, { seed: 5, rules: [{ point: 'host.page_alloc', when: { probability: 0.2 }, action: { kind: 'fail' } }] });
  const results: number[] = [];
  for (let i = 0; i < 6; i++) results.push(op.run(m, s));
  return JSON.stringify({ results, trace: m.trace!.toJSON() });
}

t.test('the same seed and plan replay to an identical trace', async (t) => {
  const a = tracedRun(11);
  const b = tracedRun(11);
  t.equal(a, b);
  t.match(a, /fault\.inject/, 'injections are traced');
  t.not(tracedRun(12), a, 'another machine seed draws differently');
});

for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
  t.test(`${kind}: a plan on page-walk reads matches the requester (device) of the walk`, async (t) => {
    for (const [target, expect] of [['0000:00:01.0', 0], ['0000:00:03.0', 1]] as const) {
      const m = createMachine(kind);
      const c = vfioContainer(m, '0000:00:03.0');
      const buf = c.p.mmap(PAGE);
      c.p.memWrite(buf, new Uint8Array([7]));
      t.equal(c.v.mapDma(c.container, { vaddr: buf, iova: 0x40_0000n, size: PAGE }), 0);
      const applied = applyPlan(m, { rules: [{ point: `${kind === 'q35-vtd' ? 'vtd' : 'smmuv3'}.walk_read`, when: { match: { device: target } }, action: { kind: 'fail' } }] });
      const dev = m.device('0000:00:03.0');
      dev.config.write(4, 2, 6);
      const r = dev.dmaRead(0x40_0000n, 1);
      t.equal(applied.rules[0]!.injected > 0 ? 1 : 0, expect, `rule on ${target}: ${applied.rules[0]!.injected} injected`);
      t.equal(r.ok, expect === 0, expect === 0 ? 'the DMA translates' : `the DMA faults (${r.ok ? '' : r.fault})`);
    }
  });
}

t.test('a rule may say its point may be absent: skipped and reported absent there, an error without it', async (t) => {
  const plan = { rules: [{ point: 'smmuv3.walk_read', optional: true, action: { kind: 'fail' } }, { point: 'vtd.walk_read', optional: true, action: { kind: 'fail' } }] };
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
    const applied = applyPlan(createMachine(kind), plan);
    t.same(applied.rules.map((r) => r.absent), kind === 'q35-vtd' ? [true, false] : [false, true], kind);
  }
  t.throws(() => applyPlan(createMachine('q35-vtd'), { rules: [{ point: 'smmuv3.walk_read', action: { kind: 'fail' } }] }), /add "optional": true/);
  t.match(validatePlan({ rules: [{ point: 'x.y', optional: 'yes', action: { kind: 'fail' } }] }), { ok: false, errors: [/optional: must be true or false/] });
});

t.test('actions that would change nothing are refused: a 0 ns delay, a corruption flipping no bit the point uses', async (t) => {
  t.match(validatePlan({ rules: [{ point: 'vtd.msi', action: { kind: 'delay', ns: 0 } }] }), { ok: false, errors: [/ns: must be an integer >= 1/] });
  t.match(validatePlan({ rules: [{ point: 'vtd.msi', action: { kind: 'corrupt', xorLo: 0 } }] }), { ok: false, errors: [/flip at least one bit/] });
  const m = createMachine('q35-vtd');
  t.throws(() => applyPlan(m, { rules: [{ point: 'dma-engine.pri.response', action: { kind: 'corrupt', xorLo: 0x200 } }] }), /corrupts only the bits xorLo & 0x1ff, xorHi & 0x0/);
  t.throws(() => applyPlan(m, { rules: [{ point: 'vtd.walk_read', action: { kind: 'delay', ns: 100 } }] }), /"vtd.walk_read" cannot delay \(it supports: fail, drop, corrupt\)/);
});
