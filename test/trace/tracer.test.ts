import t from 'tap';
import { Tracer, type TraceRecord } from '../../src/trace/tracer.ts';
import { Scheduler } from '../../src/sim/scheduler.ts';

t.test('a trace reaches listeners of its name and of "*" as one typed record', async (t) => {
  const tr = new Tracer(() => 1234);
  const named: TraceRecord<'msi.send'>[] = [];
  const all: TraceRecord[] = [];
  tr.on('msi.send', (r) => named.push(r));
  tr.on('*', (r) => all.push(r));
  tr.trace('msi.send', '0000:00:01.0', { rid: 8, addr: 0xfee00000, data: 0x41 });
  t.same(named, [{ name: 'msi.send', ts: 1234, source: '0000:00:01.0', args: { rid: 8, addr: 0xfee00000, data: 0x41 } }]);
  t.equal(all.length, 1);
  t.equal(all[0], named[0], 'the same record object');
  t.notOk('dur' in named[0]!, 'no dur key unless one is given');
});

t.test('a listener for one name does not see other names', async (t) => {
  const tr = new Tracer();
  let n = 0;
  tr.on('mem.unassigned', () => n++);
  tr.trace('msi.receive', 'irq', { addr: 0, data: 0 });
  t.equal(n, 0);
});

t.test('records carry the virtual time of the clock and an optional duration', async (t) => {
  const s = new Scheduler();
  const tr = new Tracer(() => s.now);
  const seen: TraceRecord[] = [];
  tr.on('*', (r) => seen.push(r));
  s.schedule(1500, () => tr.trace('device.op', 'dev', { device: 'd', op: 'go', detail: '' }, 250));
  s.run();
  t.equal(seen[0]!.ts, 1500);
  t.equal(seen[0]!.dur, 250);
});

t.test('wants() is true only while someone listens to the name or to "*"', async (t) => {
  const tr = new Tracer();
  t.equal(tr.wants('mem.unassigned'), false);
  const f = () => {};
  tr.on('mem.unassigned', f);
  t.equal(tr.wants('mem.unassigned'), true);
  t.equal(tr.wants('msi.send'), false);
  tr.off('mem.unassigned', f);
  t.equal(tr.wants('mem.unassigned'), false);
  tr.on('*', f);
  t.equal(tr.wants('msi.send'), true);
});

t.test('tracing with nobody listening does not call the clock', async (t) => {
  let calls = 0;
  const tr = new Tracer(() => ++calls);
  tr.trace('msi.send', 'x', { rid: 0, addr: 0, data: 0 });
  t.equal(calls, 0);
});
