import t from 'tap';
import fc from 'fast-check';
import { Reservoir } from '../../src/trace/reservoir.ts';

t.test('up to its capacity a reservoir keeps every value in order, with exact count, mean, min and max', async (t) => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 1e9 }), { maxLength: 50 }), (xs) => {
    const r = new Reservoir(50);
    for (const x of xs) r.add(x);
    t.same(r.sample, xs);
    t.equal(r.count, xs.length);
    t.equal(r.exact, true);
    if (xs.length > 0) {
      t.equal(r.mean, xs.reduce((a, b) => a + b, 0) / xs.length);
      t.equal(r.min, Math.min(...xs));
      t.equal(r.max, Math.max(...xs));
    }
  }), { numRuns: 50 });
});

t.test('past its capacity the sample stays bounded, holds only values added, and the totals stay exact', async (t) => {
  const r = new Reservoir(100);
  let sum = 0;
  for (let i = 0; i < 100_000; i++) {
    r.add(i);
    sum += i;
  }
  const s = r.sample;
  t.equal(s.length, 100);
  t.equal(r.count, 100_000);
  t.equal(r.sum, sum);
  t.equal(r.min, 0);
  t.equal(r.max, 99_999);
  t.equal(r.exact, false);
  t.ok(s.every((x) => Number.isInteger(x) && x >= 0 && x < 100_000));
  // A uniform sample of 0..99999: its mean lies near 50000 (100 values: sd of the mean ~2900).
  const m = s.reduce((a, b) => a + b, 0) / s.length;
  t.ok(m > 35_000 && m < 65_000, `sample mean ${m}`);
  // Later values are not favoured: some of the sample comes from the first half.
  t.ok(s.some((x) => x < 50_000) && s.some((x) => x >= 50_000));
});

t.test('the same values give the same sample (a fixed seed: runs stay reproducible)', async (t) => {
  const a = new Reservoir(10);
  const b = new Reservoir(10);
  for (let i = 0; i < 1000; i++) {
    a.add(i * 7);
    b.add(i * 7);
  }
  t.same(a.sample, b.sample);
});
