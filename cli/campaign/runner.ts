/**
 * The fault campaign runner (issue 9, part 7): one scenario under many seeds
 * or fault plans, spread over worker threads, summarised by outcome and by
 * injection point, each failure with the input that replays it.
 *
 * ```ts
 * const s = await runCampaign({
 *   scenario: SCENARIOS.planOnOperation,
 *   jobs: sweepPlans({ kind: 'q35-vtd' }).map((input, id) => ({ id, input })),
 *   workers: 2,
 * });
 * console.log(formatSummary(s));
 * ```
 * A job that runs past `timeoutMs` is reported as `timeout` and its worker
 * is replaced. Replay a failure in-process by calling the scenario function
 * with the failure's `input`.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { CampaignJob, Outcome, ScenarioRef, ScenarioResult, WorkerReply } from '../../tools/campaign/types.ts';

export interface CampaignOptions<I> {
  scenario: ScenarioRef;
  jobs: readonly CampaignJob<I>[];
  /** Worker threads (default: min(2, available parallelism)). */
  workers?: number;
  /** Per-job wall-clock limit in ms (default 60000). */
  timeoutMs?: number;
  /** Called as each job finishes (progress). */
  onResult?: (job: CampaignJob<I>, r: ScenarioResult) => void;
}

export interface PointTally {
  survived: number;
  errored: number;
  permitted: number;
  broken: number;
  exception: number;
  timeout: number;
}

export interface CampaignFailure<I> {
  id: number;
  input: I;
  outcome: Outcome;
  detail: string;
}

export interface CampaignSummary<I> {
  jobs: number;
  workers: number;
  ms: number;
  byOutcome: Record<Outcome, number>;
  /** Per injection point: how runs that injected there ended. */
  byPoint: Record<string, PointTally>;
  /** Runs in which nothing was injected. */
  uninjected: number;
  /** Every broken, exception and timeout run, with the input to replay it ('permitted' runs are not failures). */
  failures: CampaignFailure<I>[];
  results: { id: number; result: ScenarioResult; ms: number }[];
}

const emptyTally = (): PointTally => ({ survived: 0, errored: 0, permitted: 0, broken: 0, exception: 0, timeout: 0 });

/** tsx's ESM API, resolved from this package (an eval worker resolves bare names from the working directory). */
function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return 'tsx/esm/api';
  }
}

/** Workers start from a small bootstrap that registers tsx (TypeScript) and then loads worker.ts. */
function newWorker(): Worker {
  const entry = new URL('./worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsxApi())}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, execArgv: [] });
}

/** Run every job of the campaign; resolves with the summary once all have reported. */
export async function runCampaign<I>(opts: CampaignOptions<I>): Promise<CampaignSummary<I>> {
  const t0 = performance.now();
  const nWorkers = Math.max(1, Math.min(opts.workers ?? Math.min(2, availableParallelism()), opts.jobs.length || 1));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const queue = [...opts.jobs];
  const byId = new Map(opts.jobs.map((j) => [j.id, j]));
  const results: { id: number; result: ScenarioResult; ms: number }[] = [];

  await new Promise<void>((resolve) => {
    let live = 0;
    const spawn = () => {
      const w = newWorker();
      live++;
      let current: CampaignJob<I> | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        live--;
        if (live === 0 && queue.length === 0) resolve();
      };
      const record = (job: CampaignJob<I>, result: ScenarioResult, ms: number) => {
        results.push({ id: job.id, result, ms });
        opts.onResult?.(job, result);
      };
      const next = () => {
        current = queue.shift();
        if (current === undefined) {
          void w.terminate();
          finish();
          return;
        }
        const job = current;
        timer = setTimeout(() => {
          record(job, { outcome: 'timeout', detail: `no result after ${timeoutMs} ms` }, timeoutMs);
          current = undefined;
          void w.terminate();
          finish();
          if (queue.length > 0) spawn();
          else if (live === 0) resolve();
        }, timeoutMs);
        w.postMessage({ job, scenario: opts.scenario });
      };
      w.on('message', (r: WorkerReply) => {
        if (timer !== undefined) clearTimeout(timer);
        const job = byId.get(r.id);
        if (job !== undefined && current?.id === r.id) record(job, r.result, r.ms);
        next();
      });
      w.on('error', (e) => {
        if (timer !== undefined) clearTimeout(timer);
        if (current !== undefined) record(current, { outcome: 'exception', detail: `the worker died: ${e.stack ?? e.message}` }, 0);
        current = undefined;
        finish();
        if (queue.length > 0) spawn();
        else if (live === 0) resolve();
      });
      next();
    };
    if (queue.length === 0) resolve();
    for (let i = 0; i < nWorkers; i++) spawn();
  });

  results.sort((a, b) => a.id - b.id);
  const byOutcome: Record<Outcome, number> = { survived: 0, errored: 0, permitted: 0, broken: 0, exception: 0, timeout: 0 };
  const byPoint: Record<string, PointTally> = {};
  const failures: CampaignFailure<I>[] = [];
  let uninjected = 0;
  for (const r of results) {
    byOutcome[r.result.outcome]++;
    const pts = Object.keys(r.result.injected ?? {});
    if (pts.length === 0) uninjected++;
    for (const p of pts) (byPoint[p] ??= emptyTally())[r.result.outcome]++;
    if (r.result.outcome === 'broken' || r.result.outcome === 'exception' || r.result.outcome === 'timeout') {
      failures.push({ id: r.id, input: byId.get(r.id)!.input, outcome: r.result.outcome, detail: r.result.detail ?? '' });
    }
  }
  return { jobs: opts.jobs.length, workers: nWorkers, ms: performance.now() - t0, byOutcome, byPoint, uninjected, failures, results };
}

/** The summary as text: outcomes, a table per injection point, then each failure with its replay input. */
export function formatSummary<I>(s: CampaignSummary<I>): string {
  const lines = [
    `${s.jobs} runs on ${s.workers} workers in ${(s.ms / 1000).toFixed(1)} s: ` +
      (Object.entries(s.byOutcome) as [Outcome, number][]).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ') +
      ` (${s.uninjected} with no injection)`,
  ];
  const pts = Object.keys(s.byPoint).sort();
  if (pts.length > 0) {
    lines.push('point                              survived errored permitted broken exception timeout');
    for (const p of pts) {
      const t = s.byPoint[p]!;
      lines.push(
        `${p.padEnd(34)} ${String(t.survived).padStart(8)} ${String(t.errored).padStart(7)} ${String(t.permitted).padStart(9)} ${String(t.broken).padStart(6)} ${String(t.exception).padStart(9)} ${String(t.timeout).padStart(7)}`,
      );
    }
  }
  for (const f of s.failures) lines.push(`FAIL #${f.id} ${f.outcome}: ${f.detail.split('\n')[0]}\n  replay input: ${JSON.stringify(f.input)}`);
  return lines.join('\n');
}
