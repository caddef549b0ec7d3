import t from 'tap';
import { MsiController } from '../../src/irq/msi-controller.ts';
import { Tracer } from '../../src/trace/tracer.ts';

const make = () => {
  let now = 0;
  const msi = new MsiController(0xfee0_0000, 0x1000, new Tracer(), () => now++);
  return msi;
};

t.test('counts stay exact however many messages arrive; received keeps the latest historyLimit, oldest first', async (t) => {
  const msi = make();
  msi.historyLimit = 8;
  for (let i = 0; i < 1000; i++) msi.deliver(0xfee0_0000, i % 3, 5);
  t.equal(msi.count(), 1000);
  t.equal(msi.count(0), 334);
  t.equal(msi.count(1), 333);
  t.equal(msi.count(2), 333);
  t.equal(msi.count(7), 0);
  const r = msi.received;
  t.equal(r.length, 8);
  t.same(r.map((m) => m.time), [992, 993, 994, 995, 996, 997, 998, 999]);
  t.same(r.map((m) => m.data), [992 % 3, 993 % 3, 994 % 3, 995 % 3, 996 % 3, 997 % 3, 998 % 3, 999 % 3]);
});

t.test('lowering historyLimit keeps the latest messages; handlers still see every message', async (t) => {
  const msi = make();
  let seen = 0;
  msi.on(undefined, () => seen++);
  for (let i = 0; i < 20; i++) msi.deliver(0xfee0_0000, i, -1);
  t.equal(msi.received.length, 20);
  msi.historyLimit = 5;
  t.same(msi.received.map((m) => m.data), [15, 16, 17, 18, 19]);
  msi.deliver(0xfee0_0000, 20, -1);
  t.same(msi.received.map((m) => m.data), [16, 17, 18, 19, 20]);
  t.equal(seen, 21);
  t.equal(msi.count(), 21);
});
