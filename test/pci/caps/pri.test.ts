import t from 'tap';
import { CapabilityList } from '../../../src/pci/capability-list.ts';
import { ConfigSpace } from '../../../src/pci/config-space.ts';
import { PRI, PRI_CTRL, PRI_STATUS, PriCapability, type PriOptions } from '../../../src/pci/caps/pri.ts';

function make(opts: Partial<PriOptions> = {}) {
  const cfg = new ConfigSpace();
  const list = new CapabilityList(cfg);
  const events: string[] = [];
  const pri = new PriCapability(cfg, list, {
    capacity: 64,
    onEnableChange: (en) => events.push(en ? 'enable' : 'disable'),
    onReset: () => events.push('reset'),
    ...opts,
  });
  const b = pri.offset;
  const ctrl = (v: number) => cfg.write(b + PRI.CTRL, 2, v);
  const status = () => cfg.read(b + PRI.STATUS, 2);
  return { cfg, list, pri, events, b, ctrl, status };
}

t.test('PRI is extended capability 0x0013 with RO capacity and RW allocation', async (t) => {
  const { cfg, list, pri, b } = make();
  t.equal(list.findExt(PRI.CAP_ID), b);
  t.equal(cfg.read(b + PRI.MAX_REQ, 4), 64);
  cfg.write(b + PRI.MAX_REQ, 4, 1);
  t.equal(pri.capacity, 64);
  cfg.write(b + PRI.ALLOC_REQ, 4, 32);
  t.equal(pri.allocation, 32);
  t.equal(list.addExt(0x0b, 1, 8), b + 16);
});

t.test('out of reset the interface is disabled and Stopped', async (t) => {
  const { pri, status } = make();
  t.notOk(pri.enabled);
  t.equal(status(), PRI_STATUS.STOPPED);
});

t.test('Stopped reads 0 while enabled and 1 once disabled with nothing outstanding', async (t) => {
  const { pri, ctrl, status, events } = make();
  ctrl(PRI_CTRL.ENABLE);
  t.equal(status() & PRI_STATUS.STOPPED, 0);
  pri.setOutstanding(3);
  ctrl(0);
  t.same(events, ['enable', 'disable']);
  t.equal(status() & PRI_STATUS.STOPPED, 0, 'not stopped while requests are outstanding');
  pri.setOutstanding(0);
  t.not(status() & PRI_STATUS.STOPPED, 0);
  t.ok(pri.stopped);
});

t.test('Response Failure and UPRGI clear only when written with 1', async (t) => {
  const { pri, cfg, b, status } = make();
  pri.reportResponseFailure();
  pri.reportUnexpectedPrgIndex();
  cfg.write(b + PRI.STATUS, 2, 0);
  t.equal(status() & 3, 3);
  cfg.write(b + PRI.STATUS, 2, PRI_STATUS.RF);
  t.equal(status() & 3, PRI_STATUS.UPRGI);
  t.notOk(pri.responseFailure);
  t.ok(pri.unexpectedPrgIndex);
});

t.test('Stopped and PASID Required are read-only', async (t) => {
  const { cfg, b, status } = make({ pasidRequired: true });
  cfg.write(b + PRI.STATUS, 2, 0xffff);
  t.equal(status(), PRI_STATUS.STOPPED | PRI_STATUS.PASID_REQUIRED);
});

t.test('Reset with Enable clear drops outstanding requests and reads 0; RF and UPRGI stay until written 1', async (t) => {
  const { pri, ctrl, status, events, cfg, b } = make();
  pri.setOutstanding(5);
  pri.reportResponseFailure();
  pri.reportUnexpectedPrgIndex();
  ctrl(PRI_CTRL.RESET);
  t.same(events, ['reset']);
  t.equal(status() & (PRI_STATUS.RF | PRI_STATUS.UPRGI), PRI_STATUS.RF | PRI_STATUS.UPRGI, 'status bits are RW1C only');
  t.equal(pri.outstanding, 0);
  t.not(status() & PRI_STATUS.STOPPED, 0);
  t.equal(cfg.read(b + PRI.CTRL, 2), 0, 'Reset reads 0');
});

t.test('Reset is ignored while Enable stays set, but acts when Enable clears in the same write', async (t) => {
  const { pri, ctrl, events, cfg, b } = make();
  ctrl(PRI_CTRL.ENABLE);
  pri.setOutstanding(2);
  pri.reportResponseFailure();
  ctrl(PRI_CTRL.ENABLE | PRI_CTRL.RESET);
  t.ok(pri.responseFailure);
  t.equal(pri.outstanding, 2);
  t.equal(cfg.read(b + PRI.CTRL, 2), PRI_CTRL.ENABLE);
  ctrl(PRI_CTRL.RESET);
  t.same(events, ['enable', 'disable', 'reset']);
  t.equal(pri.outstanding, 0);
  t.ok(pri.stopped);
});

t.test('reset() restores the power-on state', async (t) => {
  const { pri, ctrl, cfg, b } = make();
  ctrl(PRI_CTRL.ENABLE);
  cfg.write(b + PRI.ALLOC_REQ, 4, 8);
  pri.setOutstanding(1);
  pri.reset();
  t.notOk(pri.enabled);
  t.equal(pri.allocation, 0);
  t.ok(pri.stopped);
});

t.test('guest writes of any size and value never throw; bad device input does', async (t) => {
  const { cfg, b, pri } = make();
  for (let off = b; off < b + 16; off++) for (const size of [1, 2, 4]) cfg.write(off, size, 0xffffffff);
  t.throws(() => pri.setOutstanding(-1), RangeError);
  t.throws(() => make({ capacity: -1 }), RangeError);
});
