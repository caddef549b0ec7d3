import t from 'tap';
import fc from 'fast-check';
import { Prng } from '../../src/sim/prng.ts';

const take = (p: Prng, n: number) => Array.from({ length: n }, () => p.nextU32());

t.test('the same seed gives the same sequence', async (t) => {
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), (seed) => JSON.stringify(take(new Prng(seed), 16)) === JSON.stringify(take(new Prng(seed), 16))),
    { numRuns: 100 },
  );
  t.pass();
});

t.test('different seeds give different sequences', async (t) => {
  const seqs = new Set<string>();
  for (let seed = 0; seed < 200; seed++) seqs.add(JSON.stringify(take(new Prng(seed), 4)));
  t.equal(seqs.size, 200);
});

t.test('seed 0 is usable (the state is never all zeros)', async (t) => {
  const p = new Prng(0);
  const v = take(p, 8);
  t.ok(v.some((x) => x !== 0));
  t.equal(new Set(v).size, 8);
});

t.test('the seed is kept as a u32', async (t) => {
  t.equal(new Prng(-1).seed, 0xffffffff);
  t.same(take(new Prng(-1), 4), take(new Prng(0xffffffff), 4));
});

t.test('nextU32 yields u32 values; float is in [0, 1)', async (t) => {
  const p = new Prng(42);
  for (let i = 0; i < 2000; i++) {
    const u = p.nextU32();
    if (!(Number.isInteger(u) && u >= 0 && u <= 0xffffffff)) t.fail(`bad u32 ${u}`);
    const f = p.float();
    if (!(f >= 0 && f < 1)) t.fail(`bad float ${f}`);
  }
  t.pass();
});

t.test('int(min, max) stays in the inclusive range and reaches both ends', async (t) => {
  const p = new Prng(7);
  const counts = new Map<number, number>();
  for (let i = 0; i < 10000; i++) {
    const v = p.int(-3, 6);
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  t.same([...counts.keys()].sort((a, b) => a - b), [-3, -2, -1, 0, 1, 2, 3, 4, 5, 6]);
  // chi-square against uniform, 9 degrees of freedom: 27.88 is the 0.1% critical value
  let chi = 0;
  for (const c of counts.values()) chi += (c - 1000) ** 2 / 1000;
  t.ok(chi < 27.88, `roughly uniform (chi^2 = ${chi.toFixed(2)})`);
  t.equal(p.int(5, 5), 5);
  t.throws(() => p.int(2, 1), RangeError);
});

t.test('every output bit is about half ones', async (t) => {
  const p = new Prng(123);
  const ones = new Array<number>(32).fill(0);
  const N = 4000;
  for (let i = 0; i < N; i++) {
    const v = p.nextU32();
    for (let b = 0; b < 32; b++) ones[b]! += (v >>> b) & 1;
  }
  for (let b = 0; b < 32; b++) {
    if (Math.abs(ones[b]! - N / 2) > 200) t.fail(`bit ${b}: ${ones[b]} ones of ${N}`);
  }
  t.pass();
});

t.test('chance(0) never and chance(1) always', async (t) => {
  const p = new Prng(9);
  for (let i = 0; i < 500; i++) {
    if (p.chance(0)) t.fail('chance(0) was true');
    if (!p.chance(1)) t.fail('chance(1) was false');
  }
  t.pass();
});

t.test('fork is deterministic: the same seed and label give the same stream', async (t) => {
  t.same(take(new Prng(5).fork('smmu'), 8), take(new Prng(5).fork('smmu'), 8));
});

t.test('forking does not disturb the parent stream, however much the child draws', async (t) => {
  const a = new Prng(11);
  const b = new Prng(11);
  take(a, 3);
  take(b, 3);
  const child = a.fork('dev');
  take(child, 1000);
  t.same(take(a, 16), take(b, 16));
});

t.test('a fork does not depend on how far the parent has advanced', async (t) => {
  const fresh = new Prng(11).fork('x');
  const used = new Prng(11);
  take(used, 100);
  t.same(take(used.fork('x'), 8), take(fresh, 8));
});

t.test('forks with different labels, and the parent, give different streams', async (t) => {
  const p = new Prng(3);
  const streams = ['a', 'b', 'ab', 'ba', '', 'smmu', 'vtd'].map((l) => JSON.stringify(take(p.fork(l), 4)));
  streams.push(JSON.stringify(take(new Prng(3), 4)));
  t.equal(new Set(streams).size, streams.length);
});

t.test('forks of different seeds with the same label differ', async (t) => {
  const seqs = new Set<string>();
  for (let seed = 0; seed < 100; seed++) seqs.add(JSON.stringify(take(new Prng(seed).fork('dev'), 4)));
  t.equal(seqs.size, 100);
});

/** xoshiro128** in BigInt arithmetic, independent of the implementation's 32-bit tricks. */
function referenceXoshiro(state: [bigint, bigint, bigint, bigint], n: number): number[] {
  const M = 0xffffffffn;
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & M;
  let [s0, s1, s2, s3] = state;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(Number((rotl((s1 * 5n) & M, 7n) * 9n) & M));
    const tt = (s1 << 9n) & M;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= tt;
    s3 = rotl(s3, 11n);
  }
  return out;
}

t.test('nextU32 is xoshiro128** over the state the seed expands to', async (t) => {
  for (const seed of [0, 1, 0xdeadbeef, 0xffffffff]) {
    const p = new Prng(seed);
    const st = p as unknown as { s0: number; s1: number; s2: number; s3: number };
    const state = [st.s0, st.s1, st.s2, st.s3].map((x) => BigInt(x >>> 0)) as [bigint, bigint, bigint, bigint];
    t.same(take(p, 32), referenceXoshiro(state, 32), `seed ${seed}`);
  }
});
