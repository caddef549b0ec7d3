import t from 'tap';
import { Atc } from '../../../devices/dma-engine/atc.ts';
import type { AtsTranslation } from '../../../src/pci/ats-messages.ts';
import { Counters } from '../../../src/trace/counters.ts';
import { Tracer } from '../../../src/trace/tracer.ts';

const PAGE = 4096;

function atc(n = 8) {
  const counters = new Counters();
  return { a: new Atc(n, counters, 'x', new Tracer(), 'x'), counters };
}

function tr(ua: number, pa: number, size = PAGE, extra: Partial<AtsTranslation> = {}): AtsTranslation {
  return { translatedAddr: pa, untranslatedAddr: ua, size, read: true, write: true, exec: false, priv: false, untranslatedOnly: false, global: false, ...extra };
}

t.test('a lookup finds the entry covering the address for the same PASID and privilege, with the needed permission', async (t) => {
  const { a, counters } = atc();
  a.insert(3, false, tr(0x10000, 0x80000, 2 * PAGE, { write: false }));
  const i = a.lookup(3, false, 0x11234, false, false);
  t.ok(i >= 0);
  t.equal(a.translate(i, 0x11234), 0x81234);
  t.equal(a.end(i), 0x12000);
  t.equal(a.lookup(3, false, 0x11234, true, false), -1, 'no write permission: a miss');
  t.equal(a.lookup(3, false, 0x10000, false, true), -1, 'no exec permission');
  t.equal(a.lookup(4, false, 0x10000, false, false), -1, 'another PASID');
  t.equal(a.lookup(3, true, 0x10000, false, false), -1, 'privileged requests have their own entries');
  t.equal(a.lookup(-1, false, 0x10000, false, false), -1, 'no PASID is a tag of its own');
  t.equal(counters.get('x.atc.hit'), 1);
  t.equal(counters.get('x.atc.miss'), 5);
});

t.test('R=W=0 translations are never cached; U=1 ones are, whatever their permissions', async (t) => {
  const { a } = atc();
  a.insert(-1, false, tr(0, 0, PAGE, { read: false, write: false }));
  t.equal(a.count, 0);
  a.insert(-1, false, tr(0, 0, PAGE, { read: false, write: false, untranslatedOnly: true }));
  const i = a.lookup(-1, false, 8, true, false);
  t.ok(i >= 0);
  t.ok(a.untranslatedOnly(i));
});

t.test('a fill replaces overlapping entries of the same tag', async (t) => {
  const { a } = atc();
  a.insert(1, false, tr(0x0, 0x10000));
  a.insert(1, false, tr(0x1000, 0x11000));
  a.insert(2, false, tr(0x0, 0x20000));
  a.insert(1, false, tr(0x0, 0x40000, 4 * PAGE));
  t.same(a.entries().map((e) => [e.pasid, e.untranslatedAddr, e.size]).sort(), [[1, 0, 4 * PAGE], [2, 0, PAGE]]);
});

t.test('Global entries serve every PASID (not untagged requests)', async (t) => {
  const { a } = atc();
  a.insert(1, false, tr(0x5000, 0x9000, PAGE, { global: true }));
  t.ok(a.lookup(7, false, 0x5000, false, false) >= 0);
  t.equal(a.lookup(-1, false, 0x5000, false, false), -1);
});

t.test('invalidation scope: a PASID drops its entries and Global ones; no PASID or all-PASIDs drops everything in range', async (t) => {
  const { a, counters } = atc();
  const fill = () => {
    a.flush();
    a.insert(1, false, tr(0x0, 0x10000));
    a.insert(2, false, tr(0x0, 0x20000));
    a.insert(2, false, tr(0x1000, 0x21000, PAGE, { global: true }));
    a.insert(-1, false, tr(0x0, 0x30000));
    a.insert(1, false, tr(0x8000, 0x18000));
  };
  fill();
  t.equal(a.invalidate(1, false, 0, 0x2000), 2, 'PASID 1 at 0 and the Global entry');
  t.same(a.entries().map((e) => e.pasid).sort(), [-1, 1, 2]);
  fill();
  t.equal(a.invalidate(-1, false, 0, 0x2000), 4, 'no PASID: every PASID in the range');
  fill();
  t.equal(a.invalidate(2, true, 0, 2 ** 64), 5, 'Global Invalidate over everything');
  t.equal(counters.get('x.atc.invalidated'), 11);
});

t.test('replacement is LRU: the entry used longest ago goes', async (t) => {
  const { a, counters } = atc(3);
  for (let p = 0; p < 3; p++) a.insert(-1, false, tr(p * PAGE, p * PAGE));
  a.lookup(-1, false, 0, false, false);
  a.lookup(-1, false, 2 * PAGE, false, false);
  a.insert(-1, false, tr(3 * PAGE, 3 * PAGE));
  t.same(a.entries().map((e) => e.untranslatedAddr).sort((x, y) => x - y), [0, 2 * PAGE, 3 * PAGE]);
  t.equal(counters.get('x.atc.evict'), 1);
  t.equal(a.flush(), 3);
  t.equal(a.count, 0);
});
