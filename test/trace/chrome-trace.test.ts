import t from 'tap';
import { Tracer } from '../../src/trace/tracer.ts';
import { ChromeTraceSink, type ChromeTraceEvent } from '../../src/trace/chrome-trace.ts';
import { Counters } from '../../src/trace/counters.ts';

function scenario() {
  let now = 0;
  const tr = new Tracer(() => now);
  const sink = new ChromeTraceSink(tr, { seed: '1', machine: 'virt-smmuv3' });
  now = 1500;
  tr.trace('dma.transaction', '0000:00:01.0', { rid: 8, pasid: 0, at: 'untranslated', addr: 0x1000, len: 64, write: false });
  now = 2500;
  tr.trace('device.op', 'smmuv3', { device: 'smmuv3', op: 'walk', detail: 'ste' }, 750);
  now = 3000;
  tr.trace('msi.send', '0000:00:01.0', { rid: 8, addr: 0xfee00000, data: 1 });
  const counters = new Counters();
  counters.counter('smmuv3.iotlb.hit').value = 12;
  counters.counter('smmuv3.iotlb.miss').value = 3;
  counters.counter('vtd.iotlb.hit').value = 1;
  sink.sampleCounters(counters, 4000, 'smmuv3.');
  return { tr, sink };
}

t.test('the JSON has a traceEvents array, displayTimeUnit and otherData, and survives a round trip', async (t) => {
  const { sink } = scenario();
  const parsed = JSON.parse(sink.stringify()) as Record<string, unknown>;
  t.ok(Array.isArray(parsed['traceEvents']));
  t.equal(parsed['displayTimeUnit'], 'ns');
  t.same(parsed['otherData'], { seed: '1', machine: 'virt-smmuv3' });
  t.same(parsed, sink.toJSON());
});

t.test('every event has the fields its phase requires, with valid types', async (t) => {
  const { sink } = scenario();
  const evs = sink.toJSON().traceEvents;
  for (const e of evs) {
    t.match(e, { name: String, ph: /^[XiCM]$/, ts: Number, pid: Number, tid: Number }, `${e.ph} ${e.name}`);
    t.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid), 'pid/tid are integers');
    t.ok(Number.isFinite(e.ts) && e.ts >= 0);
    if (e.ph === 'X') t.ok(typeof e.dur === 'number' && e.dur >= 0, 'X has a duration');
    if (e.ph === 'i') t.ok(e.s === 't' || e.s === 'p' || e.s === 'g', 'i has a scope');
    if (e.ph === 'M') t.ok(['process_name', 'thread_name'].includes(e.name) && typeof e.args['name'] === 'string');
    if (e.ph === 'C') t.ok(Object.values(e.args).every((v) => typeof v === 'number'), 'C args are numbers');
  }
});

t.test('virtual ns become µs in ts and dur', async (t) => {
  const { sink } = scenario();
  const evs = sink.toJSON().traceEvents;
  const dma = evs.find((e) => e.name === 'dma.transaction')!;
  t.equal(dma.ph, 'i');
  t.equal(dma.ts, 1.5);
  const walk = evs.find((e) => e.name === 'device.op')!;
  t.equal(walk.ph, 'X', 'an event with a duration is a complete event');
  t.equal(walk.ts, 1.75, 'traced when it ended (2.5 us) after 0.75 us: the slice starts at 1.75 us');
  t.equal(walk.dur, 0.75);
});

t.test('each source is a thread named by a thread_name record, numbered in first-seen order', async (t) => {
  const { sink } = scenario();
  const evs = sink.toJSON().traceEvents;
  t.same(evs[0], { name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: 'ioemu' } });
  const threads = evs.filter((e) => e.name === 'thread_name');
  t.same(threads.map((e) => [e.tid, e.args['name']]), [
    [1, '0000:00:01.0'],
    [2, 'smmuv3'],
  ]);
  const tidOf = (name: string) => evs.find((e) => e.name === name)!.tid;
  t.equal(tidOf('dma.transaction'), 1);
  t.equal(tidOf('msi.send'), 1, 'the same source keeps its thread');
  t.equal(tidOf('device.op'), 2);
  for (const e of evs.filter((x) => x.ph !== 'M' && x.ph !== 'C')) {
    const firstUse = evs.findIndex((x) => x.tid === e.tid && x.ph !== 'M');
    const meta = evs.findIndex((x) => x.name === 'thread_name' && x.tid === e.tid);
    t.ok(meta >= 0 && meta < firstUse, `thread ${e.tid} is named before it is used`);
  }
  t.ok(evs.every((e) => e.pid === 1), 'one process');
});

t.test('instant events carry the trace args and the event category', async (t) => {
  const { sink } = scenario();
  const msi = sink.toJSON().traceEvents.find((e) => e.name === 'msi.send')!;
  t.same(msi.args, { rid: 8, addr: 0xfee00000, data: 1 });
  t.equal(msi.cat, 'msi');
});

t.test('sampleCounters writes one C event per counter under the prefix, at the given time', async (t) => {
  const { sink } = scenario();
  const cs = sink.toJSON().traceEvents.filter((e): e is ChromeTraceEvent => e.ph === 'C');
  t.same(
    cs.map((e) => [e.name, e.ts, e.args]),
    [
      ['smmuv3.iotlb.hit', 4, { value: 12 }],
      ['smmuv3.iotlb.miss', 4, { value: 3 }],
    ],
  );
});

t.test('the same run gives the same file', async (t) => {
  t.equal(scenario().sink.stringify(), scenario().sink.stringify());
});

t.test('after detach the sink records nothing more', async (t) => {
  const { tr, sink } = scenario();
  const n = sink.events.length;
  sink.detach();
  tr.trace('msi.send', 'late', { rid: 0, addr: 0, data: 0 });
  t.equal(sink.events.length, n);
  t.equal(tr.wants('msi.send'), false, 'and the tracer goes back to costing nothing');
});

t.test('sampleChangedCounters records every counter once, then only the ones that changed', async (t) => {
  const tr = new Tracer(() => 0);
  const sink = new ChromeTraceSink(tr);
  const counters = new Counters();
  const hit = counters.counter('x.iotlb.hit');
  counters.counter('x.iotlb.miss').value = 2;
  sink.sampleChangedCounters(counters, 0);
  hit.value = 5;
  sink.sampleChangedCounters(counters, 1000);
  sink.sampleChangedCounters(counters, 2000);
  counters.counter('y.new').value = 1;
  sink.sampleChangedCounters(counters, 3000);
  const samples = sink.events.filter((e) => e.ph === 'C').map((e) => [e.ts, e.name, e.args.value]);
  t.same(samples, [
    [0, 'x.iotlb.hit', 0],
    [0, 'x.iotlb.miss', 2],
    [1, 'x.iotlb.hit', 5],
    [3, 'y.new', 1],
  ]);
});
