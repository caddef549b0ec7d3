import t from 'tap';
import { Counters } from '../../src/trace/counters.ts';

t.test('counter() returns one live object per name: bumping it shows in get()', async (t) => {
  const c = new Counters();
  const hit = c.counter('smmuv3.iotlb.hit');
  hit.value++;
  hit.value += 2;
  t.equal(c.counter('smmuv3.iotlb.hit'), hit);
  t.equal(c.get('smmuv3.iotlb.hit'), 3);
  t.equal(hit.name, 'smmuv3.iotlb.hit');
});

t.test('an unknown counter reads 0 and get() does not create it', async (t) => {
  const c = new Counters();
  t.equal(c.get('nope'), 0);
  t.same(c.snapshot(), {});
});

t.test('snapshot lists counters sorted by name, filtered by prefix, as a copy', async (t) => {
  const c = new Counters();
  c.counter('vtd.iotlb.miss').value = 4;
  c.counter('smmuv3.iotlb.miss').value = 2;
  c.counter('smmuv3.iotlb.hit').value = 7;
  c.counter('0000:00:01.0.atc.hit').value = 1;
  const all = c.snapshot();
  t.same(Object.keys(all), ['0000:00:01.0.atc.hit', 'smmuv3.iotlb.hit', 'smmuv3.iotlb.miss', 'vtd.iotlb.miss']);
  t.same(c.snapshot('smmuv3.'), { 'smmuv3.iotlb.hit': 7, 'smmuv3.iotlb.miss': 2 });
  all['vtd.iotlb.miss'] = 99;
  t.equal(c.get('vtd.iotlb.miss'), 4, 'changing a snapshot changes nothing');
  c.counter('vtd.iotlb.miss').value++;
  t.equal(all['vtd.iotlb.miss'], 99, 'a snapshot does not follow later bumps');
});

t.test('reset(prefix) zeroes only the counters under that prefix, keeping the objects live', async (t) => {
  const c = new Counters();
  const a = c.counter('smmuv3.evtq.records');
  a.value = 5;
  c.counter('vtd.faults').value = 3;
  c.reset('smmuv3.');
  t.equal(c.get('smmuv3.evtq.records'), 0);
  t.equal(c.get('vtd.faults'), 3);
  a.value++;
  t.equal(c.get('smmuv3.evtq.records'), 1, 'the hot-path handle still counts after a reset');
  c.reset();
  t.same(c.snapshot(), { 'smmuv3.evtq.records': 0, 'vtd.faults': 0 });
});
