import t from 'tap';
import { CapabilityList } from '../../../src/pci/capability-list.ts';
import { ConfigSpace } from '../../../src/pci/config-space.ts';
import { ATS, ATS_CAP, ATS_CTRL, AtsCapability, type AtsOptions } from '../../../src/pci/caps/ats.ts';

function make(opts: AtsOptions = {}) {
  const cfg = new ConfigSpace();
  const list = new CapabilityList(cfg);
  const changes: [boolean, number][] = [];
  const ats = new AtsCapability(cfg, list, { onChange: (c) => changes.push([c.enabled, c.stu]), ...opts });
  return { cfg, list, ats, changes, b: ats.offset };
}

t.test('ATS is extended capability 0x000F, version 1, 8 bytes', async (t) => {
  const { cfg, list, b } = make();
  t.equal(list.findExt(ATS.CAP_ID), b);
  t.equal(cfg.read(b, 4) & 0xfffff, 0x1000f);
  t.equal(list.addExt(0x0b, 1, 8), b + 8);
});

t.test('the capability register is read-only; queue depth 32 is encoded 0', async (t) => {
  const { cfg, ats, b } = make({ globalInvalidate: true, relaxedOrdering: true });
  t.equal(cfg.read(b + ATS.CAP, 2), ATS_CAP.PAGE_ALIGNED | ATS_CAP.GLOBAL_INVALIDATE | ATS_CAP.RELAXED_ORDERING);
  t.equal(ats.invalidateQueueDepth, 32);
  cfg.write(b + ATS.CAP, 2, 0x1f);
  t.equal(cfg.read(b + ATS.CAP, 2) & ATS_CAP.QDEP, 0);
  const small = make({ invalidateQueueDepth: 4, pageAlignedRequest: false });
  t.equal(small.cfg.read(small.b + ATS.CAP, 2), 4);
  t.equal(small.ats.invalidateQueueDepth, 4);
  t.notOk(small.ats.pageAlignedRequest);
});

t.test('control: STU and Enable are RW, the rest reserved; changes call back', async (t) => {
  const { cfg, ats, b, changes } = make();
  t.notOk(ats.enabled);
  t.equal(ats.smallestTranslationUnit, 4096);
  cfg.write(b + ATS.CTRL, 2, 0xffff);
  t.equal(cfg.read(b + ATS.CTRL, 2), ATS_CTRL.ENABLE | ATS_CTRL.STU);
  cfg.write(b + ATS.CTRL, 2, ATS_CTRL.ENABLE | 4);
  t.ok(ats.enabled);
  t.equal(ats.stu, 4);
  t.equal(ats.smallestTranslationUnit, 65536);
  cfg.write(b + ATS.CTRL, 2, ATS_CTRL.ENABLE | 4);
  t.same(changes, [[true, 31], [true, 4]], 'rewriting the same value is not a change');
});

t.test('the largest STU does not overflow', async (t) => {
  const { cfg, ats, b } = make();
  cfg.write(b + ATS.CTRL, 2, 31);
  t.equal(ats.smallestTranslationUnit, 4096 * 2 ** 31);
});

t.test('reset disables ATS', async (t) => {
  const { cfg, ats, b } = make();
  cfg.write(b + ATS.CTRL, 2, ATS_CTRL.ENABLE | 2);
  ats.reset();
  t.notOk(ats.enabled);
  t.equal(ats.stu, 0);
});

t.test('guest writes of any size and value never throw; bad definitions do', async (t) => {
  const { cfg, b } = make();
  for (let off = b; off < b + 8; off++) for (const size of [1, 2, 4]) cfg.write(off, size, 0xffffffff);
  t.throws(() => make({ invalidateQueueDepth: 0 }), RangeError);
  t.throws(() => make({ invalidateQueueDepth: 33 }), RangeError);
});
