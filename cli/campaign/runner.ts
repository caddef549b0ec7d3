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
import type { CampaignJob, ScenarioRef, ScenarioResult, WorkerReply } from '../../tools/campaign/types.ts';
import { tally, type CampaignTally } from '../../tools/campaign/summary.ts';
import { useCampaignTiering } from './tiering.ts';
import { bundledWorker } from './worker-bundle.ts';

export interface CampaignOptions<I> {
  scenario: ScenarioRef;
  jobs: readonly CampaignJob<I>[];
  /** Worker threads (default: min(2, available parallelism)). */
  workers?: number;
  /** Per-job wall-clock limit in ms (default 60000). */
  timeoutMs?: number;
  /**
   * Called as each job finishes (progress, records); `worker` numbers the
   * worker thread that ran it (0, 1, .. in the order they started; a worker
   * that replaces one lost to a timeout or a crash takes the next number).
   */
  onResult?: (job: CampaignJob<I>, r: ScenarioResult, ms: number, worker: number) => void;
  /** Stops the campaign: no job starts after it aborts, running ones are abandoned (not reported). */
  signal?: AbortSignal;
  /**
   * 'campaign' (the default) raises V8's interrupt budget for the whole
   * process before the workers start, so that code each run calls only a
   * few times is not sent to the optimising compiler (cli/campaign/tiering.ts);
   * 'default' leaves V8's flags as the process started with them.
   */
  tiering?: 'campaign' | 'default';
}

/** The tally of the results (tools/campaign/summary.ts) and how the campaign ran. */
export interface CampaignSummary<I> extends CampaignTally<I> {
  jobs: number;
  workers: number;
  ms: number;
  /** Jobs that reported (all of them unless the signal aborted the campaign). */
  results: { id: number; result: ScenarioResult; ms: number }[];
  /** The signal aborted the campaign before every job reported. */
  aborted: boolean;
}

export { formatSummary } from '../../tools/campaign/summary.ts';

/** tsx's ESM API, resolved from this package (an eval worker resolves bare names from the working directory). */
function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return 'tsx/esm/api';
  }
}

/**
 * A worker from the bundle of the scenario's module when there is one
 * (worker-bundle.ts); else from a small bootstrap that registers tsx
 * (TypeScript) and then loads worker.ts.
 */
function newWorker(bundle: URL | undefined): Worker {
  // Source maps on before the bundle loads, so stack traces in results name the TypeScript sources.
  if (bundle !== undefined) return new Worker(`process.setSourceMapsEnabled(true); import(${JSON.stringify(bundle.href)});`, { eval: true, execArgv: [] });
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
  const workers = new Set<Worker>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let aborted = opts.signal?.aborted ?? false;
  let stop = () => {};
  const bundle = opts.jobs.length > 0 && !aborted ? await bundledWorker(opts.scenario) : undefined;
  if (opts.tiering !== 'default' && opts.jobs.length > 0 && !aborted) useCampaignTiering();

  await new Promise<void>((resolve) => {
    stop = () => {
      aborted = true;
      queue.length = 0;
      for (const t of timers) clearTimeout(t);
      for (const w of workers) void w.terminate();
      resolve();
    };
    if (aborted) return stop();
    opts.signal?.addEventListener('abort', stop, { once: true });
    let live = 0;
    let started = 0;
    const spawn = () => {
      const index = started++;
      const w = newWorker(bundle);
      workers.add(w);
      live++;
      let current: CampaignJob<I> | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        workers.delete(w);
        live--;
        if (live === 0 && queue.length === 0) resolve();
      };
      const record = (job: CampaignJob<I>, result: ScenarioResult, ms: number) => {
        if (aborted) return;
        results.push({ id: job.id, result, ms });
        opts.onResult?.(job, result, ms, index);
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
          timers.delete(timer!);
          record(job, { outcome: 'timeout', detail: `no result after ${timeoutMs} ms of wall time` }, timeoutMs);
          current = undefined;
          void w.terminate();
          finish();
          if (queue.length > 0 && !aborted) spawn();
          else if (live === 0) resolve();
        }, timeoutMs);
        timers.add(timer);
        w.postMessage({ job, scenario: opts.scenario });
      };
      const clear = () => {
        if (timer === undefined) return;
        clearTimeout(timer);
        timers.delete(timer);
        timer = undefined;
      };
      w.on('message', (r: WorkerReply) => {
        clear();
        const job = byId.get(r.id);
        if (job !== undefined && current?.id === r.id) record(job, r.result, r.ms);
        next();
      });
      w.on('error', (e) => {
        clear();
        if (current !== undefined) record(current, { outcome: 'exception', detail: `the worker died: ${e.stack ?? e.message}` }, 0);
        current = undefined;
        finish();
        if (queue.length > 0 && !aborted) spawn();
        else if (live === 0) resolve();
      });
      next();
    };
    if (queue.length === 0) resolve();
    for (let i = 0; i < nWorkers; i++) spawn();
  });

  opts.signal?.removeEventListener('abort', stop);
  results.sort((a, b) => a.id - b.id);
  const t = tally(results.map((r) => ({ id: r.id, input: byId.get(r.id)!.input, result: r.result })));
  return { ...t, jobs: opts.jobs.length, workers: nWorkers, ms: performance.now() - t0, results, aborted };
}
