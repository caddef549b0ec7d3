/**
 * A campaign worker's loop: runs one job at a time, as the runner hands
 * them out. `preloaded` holds scenario modules already in the worker (the
 * bundled worker carries the package's own scenario module); any other
 * module is imported on first use.
 */
import { parentPort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import type { ScenarioResult, WorkerReply, WorkerRequest } from '../../tools/campaign/types.ts';

type ScenarioFn = (input: unknown) => ScenarioResult | Promise<ScenarioResult>;

export function serveJobs(preloaded: ReadonlyMap<string, Record<string, unknown>>): void {
  const cache = new Map<string, ScenarioFn>();
  const load = async (module: string, exportName: string): Promise<ScenarioFn> => {
    const key = `${module}#${exportName}`;
    let fn = cache.get(key);
    if (fn === undefined) {
      let mod = preloaded.get(module);
      if (mod === undefined) {
        const url = module.startsWith('file:') ? module : pathToFileURL(module).href;
        mod = (await import(url)) as Record<string, unknown>;
      }
      const f = mod[exportName];
      if (typeof f !== 'function') throw new Error(`${module} has no exported function ${exportName}`);
      fn = f as ScenarioFn;
      cache.set(key, fn);
    }
    return fn;
  };
  parentPort!.on('message', async (req: WorkerRequest) => {
    const t0 = performance.now();
    let result: ScenarioResult;
    try {
      const fn = await load(req.scenario.module, req.scenario.exportName);
      result = await fn(req.job.input);
    } catch (e) {
      result = { outcome: 'exception', detail: `the scenario threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` };
    }
    const reply: WorkerReply = { id: req.job.id, result, ms: performance.now() - t0 };
    parentPort!.postMessage(reply);
  });
}
