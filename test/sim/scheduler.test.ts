import t from 'tap';
import fc from 'fast-check';
import { Scheduler } from '../../src/sim/scheduler.ts';

t.test('a new scheduler stands at time 0 with nothing pending', async (t) => {
  const s = new Scheduler();
  t.equal(s.now, 0);
  t.equal(s.pendingCount, 0);
  t.equal(s.peekTime(), undefined);
  t.equal(s.step(), false);
  t.equal(s.run(), 0);
});

t.test('events run in time order and the clock stands at each event as it runs', async (t) => {
  const s = new Scheduler();
  const seen: [string, number][] = [];
  s.schedule(30, () => seen.push(['c', s.now]));
  s.schedule(10, () => seen.push(['a', s.now]));
  s.scheduleAt(20, () => seen.push(['b', s.now]));
  t.equal(s.pendingCount, 3);
  t.equal(s.peekTime(), 10);
  t.equal(s.run(), 3);
  t.same(seen, [
    ['a', 10],
    ['b', 20],
    ['c', 30],
  ]);
  t.equal(s.now, 30);
  t.equal(s.executed, 3);
  t.equal(s.pendingCount, 0);
});

t.test('events at the same time run in the order they were scheduled', async (t) => {
  const s = new Scheduler();
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) s.schedule(i % 2 === 0 ? 5 : 7, () => seen.push(i));
  s.run();
  t.same(seen, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
});

t.test('a zero-delay event scheduled while running goes after those already due at that time', async (t) => {
  const s = new Scheduler();
  const seen: string[] = [];
  s.schedule(5, () => {
    seen.push('a');
    s.schedule(0, () => seen.push('a-child'));
  });
  s.schedule(5, () => seen.push('b'));
  s.schedule(6, () => seen.push('c'));
  s.run();
  t.same(seen, ['a', 'b', 'a-child', 'c']);
});

t.test('a cancelled event never runs; cancel reports whether it was still pending', async (t) => {
  const s = new Scheduler();
  const seen: string[] = [];
  const a = s.schedule(10, () => seen.push('a'), 'a');
  const b = s.schedule(5, () => seen.push('b'), 'b');
  t.equal(a.label, 'a');
  t.equal(a.pending, true);
  t.equal(s.cancel(a), true);
  t.equal(a.pending, false);
  t.equal(s.cancel(a), false, 'cancelling twice');
  t.equal(s.pendingCount, 1);
  s.run();
  t.same(seen, ['b']);
  t.equal(b.pending, false);
  t.equal(s.cancel(b), false, 'cancelling an event that already ran');
  t.equal(s.now, 5, 'the clock does not move to a cancelled event');
});

t.test('an event can cancel a later event at the same time', async (t) => {
  const s = new Scheduler();
  const seen: string[] = [];
  let second: ReturnType<Scheduler['schedule']> | undefined;
  s.schedule(1, () => {
    seen.push('first');
    s.cancel(second!);
  });
  second = s.schedule(1, () => seen.push('second'));
  s.schedule(1, () => seen.push('third'));
  s.run();
  t.same(seen, ['first', 'third']);
});

t.test('peekTime skips cancelled events at the head of the queue', async (t) => {
  const s = new Scheduler();
  const e = s.schedule(1, () => {});
  s.schedule(9, () => {});
  s.cancel(e);
  t.equal(s.peekTime(), 9);
});

t.test('runUntil(time) runs events up to and including that time and leaves the clock there', async (t) => {
  const s = new Scheduler();
  const seen: number[] = [];
  for (const at of [10, 20, 30, 31]) s.scheduleAt(at, () => seen.push(at));
  t.equal(s.runUntil(25), true);
  t.same(seen, [10, 20]);
  t.equal(s.now, 25, 'the clock stands at the limit, not at the last event');
  t.equal(s.runUntil(30), true);
  t.same(seen, [10, 20, 30], 'an event at exactly the limit runs');
  t.equal(s.now, 30);
  t.equal(s.pendingCount, 1);
  t.equal(s.runUntil(100), true);
  t.equal(s.now, 100, 'with the queue empty the clock still reaches the limit');
});

t.test('runUntil(time) in the past runs nothing and leaves the clock alone', async (t) => {
  const s = new Scheduler();
  s.runUntil(50);
  let ran = false;
  s.schedule(1, () => (ran = true));
  t.equal(s.runUntil(10), true);
  t.equal(ran, false);
  t.equal(s.now, 50);
});

t.test('runUntil(predicate) stops as soon as the predicate holds', async (t) => {
  const s = new Scheduler();
  let count = 0;
  for (let i = 1; i <= 10; i++) s.schedule(i * 100, () => count++);
  t.equal(
    s.runUntil(() => count === 3),
    true,
  );
  t.equal(count, 3);
  t.equal(s.now, 300, 'the clock stands at the event that made it true');
  t.equal(s.pendingCount, 7);
});

t.test('runUntil(predicate) checks before the first event', async (t) => {
  const s = new Scheduler();
  let ran = false;
  s.schedule(1, () => (ran = true));
  t.equal(
    s.runUntil(() => true),
    true,
  );
  t.equal(ran, false);
  t.equal(s.now, 0);
});

t.test('runUntil(predicate) returns false when the events run out first', async (t) => {
  const s = new Scheduler();
  let n = 0;
  s.schedule(1, () => n++);
  s.schedule(2, () => n++);
  t.equal(
    s.runUntil(() => n === 5),
    false,
  );
  t.equal(n, 2);
  t.equal(s.pendingCount, 0);
});

t.test('maxEvents stops a model that reschedules itself forever', async (t) => {
  const s = new Scheduler();
  const tick = () => void s.schedule(10, tick);
  s.schedule(0, tick);
  t.equal(s.run(1000), 1000);
  t.equal(s.pendingCount, 1, 'the runaway is still pending, not lost');
  t.equal(s.now, 9990);
  t.equal(
    s.runUntil(() => false, 50),
    false,
    'runUntil(predicate) gives up after maxEvents',
  );
  t.equal(s.executed, 1050);
  t.equal(s.runUntil(1_000_000, 10), false, 'runUntil(time) reports the limit was not reached');
  t.equal(s.now, 10590, 'and leaves the clock at the last event run');
});

t.test('runUntil(time) that runs exactly maxEvents events and reaches the limit reports success', async (t) => {
  const s = new Scheduler();
  s.schedule(10, () => {});
  s.schedule(20, () => {});
  s.schedule(500, () => {});
  t.equal(s.runUntil(100, 2), true, 'both events before the limit ran; nothing else was due');
  t.equal(s.now, 100);
  t.equal(s.pendingCount, 1);
});

t.test('advance() moves the clock when nothing is due before the target', async (t) => {
  const s = new Scheduler();
  s.advance(250);
  t.equal(s.now, 250);
  s.schedule(1000, () => {});
  s.advance(100);
  t.equal(s.now, 350);
  t.equal(s.pendingCount, 1);
});

t.test('advance() runs events that fall due before the target, then stands at the target', async (t) => {
  const s = new Scheduler();
  const seen: number[] = [];
  s.schedule(5, () => seen.push(s.now));
  s.schedule(7, () => seen.push(s.now));
  s.advance(10);
  t.same(seen, [5, 7]);
  t.equal(s.now, 10);
});

t.test('time never goes backwards: negative or non-finite delays are refused', async (t) => {
  const s = new Scheduler();
  s.advance(100);
  t.throws(() => s.schedule(-1, () => {}), RangeError);
  t.throws(() => s.schedule(Number.NaN, () => {}), RangeError);
  t.throws(() => s.schedule(Number.POSITIVE_INFINITY, () => {}), RangeError);
  t.throws(() => s.scheduleAt(99, () => {}), RangeError);
  t.throws(() => s.advance(-1), RangeError);
  t.throws(() => s.advance(Number.NaN), RangeError);
  t.equal(s.now, 100);
});

// ---------------------------------------------------------------------------
// Property: whatever is scheduled and cancelled, the events that run are the
// uncancelled ones, sorted by (time, order of scheduling).

t.test('execution order is a stable sort by time of the uncancelled events', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ delay: fc.integer({ min: 0, max: 20 }), cancel: fc.boolean() }), { maxLength: 80 }),
      (specs) => {
        const s = new Scheduler();
        const ran: number[] = [];
        const evs = specs.map((sp, i) => s.schedule(sp.delay, () => ran.push(i)));
        specs.forEach((sp, i) => sp.cancel && s.cancel(evs[i]!));
        const want = specs
          .map((sp, i) => ({ ...sp, i }))
          .filter((x) => !x.cancel)
          .sort((a, b) => a.delay - b.delay || a.i - b.i)
          .map((x) => x.i);
        if (s.pendingCount !== want.length) return false;
        s.run();
        return JSON.stringify(ran) === JSON.stringify(want) && s.pendingCount === 0;
      },
    ),
    { numRuns: 200 },
  );
  t.pass('stable order');
});

t.test('runUntil(time) stopped by maxEvents while an event at the limit is still due reports failure', async (t) => {
  const s = new Scheduler();
  s.schedule(10, () => {});
  s.schedule(10, () => {});
  t.equal(s.runUntil(10, 1), false);
  t.equal(s.pendingCount, 1);
  t.equal(s.runUntil(10), true);
  t.equal(s.pendingCount, 0);
});

t.test('mass cancellation (a timeout armed and cancelled per request) keeps the order of the survivors', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.boolean()), { minLength: 1, maxLength: 400 }), (spec) => {
      const s = new Scheduler();
      const ran: number[] = [];
      const evs = spec.map(([d], i) => s.schedule(d, () => ran.push(i)));
      spec.forEach(([, cancel], i) => { if (cancel) s.cancel(evs[i]!); });
      const want = spec
        .map(([d, cancel], i) => ({ d, cancel, i }))
        .filter((x) => !x.cancel)
        .sort((a, b) => a.d - b.d || a.i - b.i)
        .map((x) => x.i);
      if (s.pendingCount !== want.length) return false;
      s.run();
      return JSON.stringify(ran) === JSON.stringify(want) && evs.every((e) => !e.pending);
    }),
    { numRuns: 200 },
  );
  t.pass('survivors in (time, seq) order');
});

t.test('cancelling while events run: a cancelled event never runs, later ones still do', async (t) => {
  const s = new Scheduler();
  const ran: number[] = [];
  const evs = Array.from({ length: 500 }, (_, i) => s.schedule(i, () => ran.push(i)));
  s.schedule(0, () => { for (let i = 1; i < 500; i += 2) s.cancel(evs[i]!); });
  s.run();
  t.equal(ran.length, 250);
  t.ok(ran.every((v, k) => v === 2 * k));
  t.equal(s.pendingCount, 0);
});

t.test('an advance observer hears the old time each time the clock moves forward, and only then', async (t) => {
  const s = new Scheduler();
  const heard: number[] = [];
  s.observeAdvance((before) => heard.push(before));
  s.schedule(0, () => {});
  s.schedule(10, () => {});
  s.schedule(10, () => {});
  s.schedule(25, () => {});
  s.run();
  t.same(heard, [0, 10], 'two moves: 0 -> 10 and 10 -> 25; events at the same time move nothing');
  s.advance(5);
  s.runUntil(40);
  t.same(heard, [0, 10, 25, 30], 'advance() and runUntil(limit) move the clock too');
  s.observeAdvance(undefined);
  s.advance(1);
  t.equal(heard.length, 4, 'removed');
});
