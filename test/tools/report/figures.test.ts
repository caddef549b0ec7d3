import t from 'tap';
import { iopfStats, logBins, occupancy, stats } from '../../../tools/report/figures.ts';
import { Reservoir } from '../../../src/trace/reservoir.ts';
import { collapsedTimeAxis, niceTicks } from '../../../tools/report/time-axis.ts';
import { fmtArgs, fmtTime } from '../../../tools/report/format.ts';
import type { ChromeTraceEvent } from '../../../src/trace/chrome-trace.ts';

t.test('log bins: samples that are all equal make one narrow bar in the middle of a two-decade axis', async (t) => {
  const h = logBins(new Array(32).fill(1000));
  t.equal(h.lo, 100);
  t.equal(h.hi, 10000);
  t.equal(h.bins.length, 8, 'four bins a decade');
  t.same(h.bins.filter((b) => b.count > 0), [{ lo: 1000, hi: 1778.27941004, count: 32 }], '1 us falls in the bin that starts at 1 us');
});

t.test('log bins: a heavy tail keeps each sample in its own decade', async (t) => {
  const xs = [2930, 3500, 12700, 80000, 81000, 10_000_000];
  const h = logBins(xs);
  t.equal(h.lo, 1000);
  t.equal(h.hi, 100_000_000, 'the 10 ms sample is inside the axis, not at its edge');
  t.equal(h.bins.reduce((a, b) => a + b.count, 0), xs.length, 'every sample counted once');
  const at = (x: number) => h.bins.find((b) => x >= b.lo && x < b.hi)!.count;
  t.equal(at(10_000_000), 1);
  t.equal(at(80000), 2, '80 and 81 us share a bin');
  for (let i = 1; i < h.bins.length; i++) t.equal(h.bins[i]!.lo, h.bins[i - 1]!.hi, 'edge to edge');
});

t.test('log bins: zero and negative samples are counted apart; none at all gives no bins', async (t) => {
  const h = logBins([0, 0, 500]);
  t.equal(h.zeros, 2);
  t.equal(h.bins.reduce((a, b) => a + b.count, 0), 1);
  t.same(logBins([]).bins, []);
});

t.test('stats: percentiles are samples (nearest rank)', async (t) => {
  const s = stats([5, 1, 4, 2, 3, 6, 7, 8, 9, 10]);
  t.match(s, { count: 10, min: 1, p50: 5, p90: 9, p99: 10, max: 10, mean: 5.5 });
});

t.test('iopfStats: past the sample\'s capacity the count and mean are every group\'s, the percentiles the sample\'s', async (t) => {
  const lat = new Reservoir(10);
  for (let i = 1; i <= 100; i++) lat.add(i);
  const s = iopfStats({ iopfLatencies: lat.sample, iopfGroups: lat.count, iopfMeanNs: lat.mean });
  t.equal(s.count, 100);
  t.equal(s.mean, 50.5);
  t.equal(lat.sample.length, 10, 'the sample keeps its capacity');
  // The percentiles come from the sample: with a known sample they are its own, while count and mean stay the totals'.
  const known = iopfStats({ iopfLatencies: [100, 20, 90, 30, 80, 40, 70, 50, 60, 10], iopfGroups: 1000, iopfMeanNs: 7 });
  t.match(known, { count: 1000, mean: 7, min: 10, p50: 50, p90: 90, p99: 100, max: 100 });
});

t.test('the time axis collapses a long idle stretch and keeps both bursts readable', async (t) => {
  const times = [0, 10_000, 50_000, 120_000, 10_130_000, 10_150_000, 10_188_000];
  const ax = collapsedTimeAxis(times, 10_188_000, 800, { gapWidth: 60 });
  t.equal(ax.gaps.length, 1, 'one gap: the 10 ms PRI timeout');
  t.same([ax.gaps[0]!.from, ax.gaps[0]!.to], [120_000, 10_130_000]);
  t.ok(Math.abs(ax.gaps[0]!.x1 - ax.gaps[0]!.x0 - 60) < 1e-9, 'a collapsed gap takes a fixed width');
  t.same(ax.pieces.map((p) => [p.from, p.to]), [[0, 120_000], [10_130_000, 10_188_000]]);
  t.equal(ax.x(0), 0);
  t.equal(ax.x(10_188_000), 800, 'the end of the run at the right edge');
  const second = ax.pieces[1]!;
  t.ok(second.x1 - second.x0 > 200, 'the 58 us burst after the gap gets a good share of the width');
  t.ok(ax.x(10_150_000) - ax.x(10_130_000) > 50, '20 us apart are far apart on screen');
  let last = -1;
  for (let ns = 0; ns <= 10_188_000; ns += 7919) {
    const x = ax.x(ns);
    t.ok(x >= last, 'monotonic');
    last = x;
  }
});

t.test('the time axis is one linear piece when nothing is idle for long', async (t) => {
  const ax = collapsedTimeAxis([0, 100, 200, 300, 400], 1000, 500, { minGapNs: 0, gapFraction: 0.7 });
  t.equal(ax.gaps.length, 0);
  t.equal(ax.pieces.length, 1);
  t.equal(ax.x(500), 250, 'linear');
});

t.test('a burst of one instant is drawn in the middle of its share', async (t) => {
  const ax = collapsedTimeAxis([0, 1_000_000], 1_000_000, 400, { gapWidth: 40 });
  t.equal(ax.pieces.length, 2);
  t.equal(ax.x(0), (ax.pieces[0]!.x0 + ax.pieces[0]!.x1) / 2);
  t.equal(ax.x(1_000_000), (ax.pieces[1]!.x0 + ax.pieces[1]!.x1) / 2);
});

t.test('nice ticks are round and inside the range', async (t) => {
  t.same(niceTicks(0, 120_000, 4), [0, 50_000, 100_000]);
  t.same(niceTicks(10_130_000, 10_188_000, 3), [10_140_000, 10_160_000, 10_180_000]);
  t.same(niceTicks(5, 5, 3), [5]);
});

t.test('times are precise enough to tell ticks apart, with units', async (t) => {
  t.equal(fmtTime(10_185_320), '10.185320 ms');
  t.equal(fmtTime(10_140_000, 20_000), '10.14 ms');
  t.equal(fmtTime(50_000, 50_000), '50 us');
  t.equal(fmtTime(0), '0 ns');
});

t.test('arguments: addresses in hex, exact u64 hex strings kept, the rest as JSON', async (t) => {
  t.equal(fmtArgs({ rid: 8, addr: 4096, size: '0x10000000000000000', write: true, op: 'MEMMOVE' }), 'rid=8 addr=0x1000 size=0x10000000000000000 write=true op="MEMMOVE"');
  t.equal(fmtArgs({ iova: 2n ** 64n - 1n }), 'iova=0xffffffffffffffff');
});

t.test('occupancy: a page-request group closes on its response, or when the device counts a timeout', async (t) => {
  const ev = (name: string, ts: number, args: Record<string, unknown>, ph: ChromeTraceEvent['ph'] = 'i'): ChromeTraceEvent => ({ name, ph, ts, pid: 1, tid: 1, args });
  const s = occupancy([
    ev('dma0.pri.timeouts', 0, { value: 0 }, 'C'),
    ev('dma-engine.pri.request', 1, { dev: 'dma0', last: true }),
    ev('dma-engine.pri.response', 2, { dev: 'dma0', expected: true }),
    ev('dma-engine.pri.request', 3, { dev: 'dma0', last: true }),
    ev('dma0.pri.timeouts', 13, { value: 1 }, 'C'),
  ]);
  t.same(s, [{ name: 'dma0 page-request groups outstanding', points: [[0, 0], [1000, 1], [2000, 0], [3000, 1], [13000, 0]] }]);
});
