/**
 * The fault campaign runner (issue 9, part 7): a small campaign over two
 * worker threads, a plan sweep over the VFIO and host points on the fixed
 * operation, and seeds of the model-based scenario; every failure names the
 * input that replays it, and replaying it in-process gives the same outcome.
 *
 * IOEMU_CAMPAIGN=full sweeps every injection point (nth 1..3) on both
 * machines plus 40 random probability plans each and 200 model seeds.
 */
import t from 'tap';
import { formatSummary, runCampaign } from '../../../cli/campaign/runner.ts';
import { modelSequence, planOnOperation, randomPlans, SCENARIOS, sweepPlans, type PlanInput } from '../../../tools/campaign/scenarios.ts';
import type { InjectionPointName } from '../../../machines/points.ts';

t.setTimeout(600_000);
const FULL = process.env.IOEMU_CAMPAIGN === 'full';

t.test('a plan campaign over two workers summarises survived and errored runs per injection point, with nothing broken', async (t) => {
  const points: InjectionPointName[] = ['host.page_alloc', 'vfio.pin', 'vfio.iommu_map', 'vfio.dma_alloc', 'vfio.sva_bind', 'smmuv3.cmdq_process', 'vtd.inv_queue_process'];
  const inputs: PlanInput[] = [];
  for (const kind of ['virt-smmuv3', 'q35-vtd'] as const) {
    inputs.push(...sweepPlans(FULL ? { kind } : { kind, points, nth: [1, 2], actions: ['fail'] }));
  }
  const s = await runCampaign({ scenario: SCENARIOS.planOnOperation, jobs: inputs.map((input, id) => ({ id, input })), workers: 2, timeoutMs: 60_000 });
  t.equal(s.jobs, inputs.length);
  t.equal(s.workers, 2);
  t.equal(s.results.length, inputs.length, 'every job reported');
  t.ok(s.byOutcome.errored + s.byOutcome.survived > 0, formatSummary(s).split('\n')[0]);
  t.ok(Object.keys(s.byPoint).length > 0, 'injections are tallied per point');
  t.same(s.failures, [], formatSummary(s));
  // A summary's input replays in-process with the same outcome.
  const r0 = s.results[0]!;
  t.equal(planOnOperation(inputs[r0.id]!).outcome, r0.result.outcome, 'replaying job 0 in-process gives its outcome');
});

t.test('random probability plans (drop, delay, corrupt, fail) never make the kernel or a model throw or hang', async (t) => {
  const seeds = Array.from({ length: FULL ? 200 : 16 }, (_, i) => i + 1);
  const inputs = [...randomPlans('virt-smmuv3', seeds), ...randomPlans('q35-vtd', seeds)];
  const s = await runCampaign({ scenario: SCENARIOS.planOnOperation, jobs: inputs.map((input, id) => ({ id, input })), workers: 2, timeoutMs: 60_000 });
  t.equal(s.results.length, inputs.length);
  // Corrupting a fetched STE or dropping an invalidation leaves caches stale, which the architecture permits: such runs
  // are 'permitted' (tools/fault/classify.ts), not failures. Anything broken, thrown or hung is.
  t.same(s.failures, [], formatSummary(s));
  t.pass(formatSummary(s).split('\n')[0]!);
});

t.test('a seed campaign of model-based sequences runs on both machines with no failure', async (t) => {
  const n = FULL ? 200 : 12;
  const jobs = Array.from({ length: n }, (_, i) => ({ id: i, input: { kind: i % 2 === 0 ? ('virt-smmuv3' as const) : ('q35-vtd' as const), seed: 1000 + i } }));
  const s = await runCampaign({ scenario: SCENARIOS.modelSequence, jobs, workers: 2 });
  t.equal(s.results.length, n);
  t.same(s.failures, [], formatSummary(s));
  t.equal(modelSequence(jobs[3]!.input).outcome, s.results[3]!.result.outcome, 'a seed replays in-process');
});

t.test('a scenario that throws or hangs is reported (exception, timeout), not fatal to the campaign', async (t) => {
  const here = new URL('./campaign-fixtures.ts', import.meta.url).href;
  const s = await runCampaign({
    scenario: { module: here, exportName: 'misbehave' },
    jobs: [
      { id: 0, input: 'ok' },
      { id: 1, input: 'throw' },
      { id: 2, input: 'hang' },
      { id: 3, input: 'ok' },
    ],
    workers: 2,
    timeoutMs: 4000,
  });
  t.same(
    s.results.map((r) => r.result.outcome),
    ['survived', 'exception', 'timeout', 'survived'],
  );
  t.same(s.failures.map((f) => [f.id, f.input]), [
    [1, 'throw'],
    [2, 'hang'],
  ]);
});

t.test('a worker runs a module of the package as its source would: its own import.meta.url, modules it imports on demand, stack frames in the TypeScript source', async (t) => {
  const here = new URL('./campaign-fixtures.ts', import.meta.url).href;
  const s = await runCampaign({ scenario: { module: here, exportName: 'whereAmI' }, jobs: [{ id: 0, input: null }], workers: 1 });
  t.equal(s.results[0]!.result.outcome, 'survived', s.results[0]!.result.detail ?? '');
  const d = JSON.parse(s.results[0]!.result.detail!) as { url: string; engine: string; frame: string };
  t.equal(d.url, here);
  t.equal(d.engine, 'DmaEngine');
  t.match(d.frame, /at whereAmI \(.*test\/tools\/fault\/campaign-fixtures\.ts:\d+:\d+\)/);
});

t.test('the figures command counts points, fail-nth steps, sequences and fuzz cases, with no invariant violated', async (t) => {
  const { collectFigures, formatFigures } = await import('../../../tools/campaign/figures.ts');
  const { INJECTION_POINTS } = await import('../../../machines/points.ts');
  const f = collectFigures(0.25);
  t.equal(f.injectionPoints, Object.keys(INJECTION_POINTS).length);
  t.ok(Object.values(f.failNthSteps).every((n) => n >= 1), JSON.stringify(f.failNthSteps));
  t.ok(f.modelSequences >= 2);
  t.ok((f.fuzzCases['uapi exact-errno'] ?? 0) > 100 && (f.fuzzCases.uapi ?? 0) > 0);
  t.equal(f.invariantsViolated, 0, formatFigures(f));
});
