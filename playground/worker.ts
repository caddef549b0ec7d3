/**
 * The playground's worker: runs a scenario on one or both machines with the
 * same runner as `ioemu run` (tools/scenario), so the page stays responsive,
 * and hands back the HTML report and the Chrome trace (the same bytes the
 * CLI writes for the same inputs).
 */
import { machineFor, runScenario, UsageError, type RunResult } from '../tools/scenario/scenario.ts';
import { comparisonTable, mergedTrace } from '../tools/scenario/several.ts';
import { renderReports } from '../tools/report/html.ts';
import { PlanError, parsePlan } from '../src/fault/plan.ts';
import { catalogEntry } from './catalog.ts';
import type { Reply, Request, RunRequest } from './protocol.ts';

/** The part of a dedicated worker's global scope used here (the DOM lib types `self` as a Window). */
const scope = globalThis as unknown as { onmessage: ((e: { data: Request }) => void) | null; postMessage(r: Reply): void };
const reply = (r: Reply) => scope.postMessage(r);

async function run(q: RunRequest): Promise<void> {
  const entry = catalogEntry(q.scenario);
  if (entry === undefined) throw new UsageError(`no scenario "${q.scenario}"`);
  let plan;
  if (q.plan.trim() !== '') {
    try {
      plan = parsePlan(JSON.parse(q.plan));
    } catch (e) {
      throw new UsageError(`fault plan: ${(e as Error).message}`);
    }
  }
  const runs: { result: RunResult; narrative: string[] }[] = [];
  for (const machine of q.machines) {
    reply({ type: 'progress', text: `running ${entry.scenario.name} on ${machine}...` });
    const narrative: string[] = [];
    const result = await runScenario(entry.scenario, { machine, seed: q.seed, params: q.params, ...(plan ? { plan } : {}), say: (l) => void narrative.push(l) });
    runs.push({ result, narrative });
  }
  const results = runs.map((x) => x.result);
  reply({ type: 'progress', text: 'writing the report...' });
  const trace = results.length === 1 ? results[0]!.trace.stringify() : JSON.stringify(mergedTrace(results));
  reply({
    type: 'done',
    ok: results.every((r) => r.ok),
    html: renderReports(runs),
    trace,
    events: results.reduce((a, r) => a + r.trace.events.length, 0),
    narrative: runs.flatMap((x) => [`--- ${x.result.machine}: ${x.result.ok ? 'PASSED' : 'FAILED'}`, ...x.narrative, ...x.result.failures.map((f) => `FAILED: ${f}`)]),
    comparison: results.length > 1 ? comparisonTable(results) : [],
  });
}

scope.onmessage = (e) => {
  const q = e.data;
  void (async () => {
    try {
      if (q.type === 'run') await run(q);
      else {
        const entry = catalogEntry(q.scenario);
        const points = entry === undefined ? [] : machineFor(q.machine, 1, {}, entry.scenario).board.faults.all();
        reply({ type: 'points', points: points.map((p) => ({ name: p.name, description: p.description, actions: p.actions })).sort((a, b) => a.name.localeCompare(b.name)) });
      }
    } catch (err) {
      const usage = err instanceof UsageError || err instanceof PlanError;
      reply({ type: 'error', usage, message: usage ? (err as Error).message : `internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` });
    }
  })();
};
