/**
 * A campaign's results summarised: outcomes, a tally per injection point and
 * every failure with the input that replays it. Nothing in it depends on how
 * the runs were executed (workers, shards, wall time), so the summary of
 * merged shard results is the unsharded campaign's, byte for byte.
 */
import type { Outcome, ScenarioResult } from './types.ts';

export const OUTCOMES: readonly Outcome[] = ['survived', 'errored', 'permitted', 'broken', 'exception', 'timeout'];

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

export interface CampaignTally<I> {
  /** Runs summarised. */
  runs: number;
  byOutcome: Record<Outcome, number>;
  /** Per injection point: how runs that injected there ended. */
  byPoint: Record<string, PointTally>;
  /** Runs in which nothing was injected. */
  uninjected: number;
  /** Every broken, exception and timeout run, by id, with the input to replay it ('permitted' runs are not failures). */
  failures: CampaignFailure<I>[];
}

const emptyTally = (): PointTally => ({ survived: 0, errored: 0, permitted: 0, broken: 0, exception: 0, timeout: 0 });

/** Is this outcome a failure of the campaign (exit status 1)? */
export function isFailure(o: Outcome): boolean {
  return o === 'broken' || o === 'exception' || o === 'timeout';
}

/** Tally results (in any order: they are taken by id). */
export function tally<I>(results: readonly { id: number; input: I; result: ScenarioResult }[]): CampaignTally<I> {
  const sorted = [...results].sort((a, b) => a.id - b.id);
  const byOutcome = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const byPoint: Record<string, PointTally> = {};
  const failures: CampaignFailure<I>[] = [];
  let uninjected = 0;
  for (const r of sorted) {
    byOutcome[r.result.outcome]++;
    const pts = Object.keys(r.result.injected ?? {});
    if (pts.length === 0) uninjected++;
    for (const p of pts) (byPoint[p] ??= emptyTally())[r.result.outcome]++;
    if (isFailure(r.result.outcome)) failures.push({ id: r.id, input: r.input, outcome: r.result.outcome, detail: r.result.detail ?? '' });
  }
  return { runs: sorted.length, byOutcome, byPoint, uninjected, failures };
}

/** The summary as text: outcomes, a table per injection point, then each failure with its replay input. */
export function formatSummary<I>(s: CampaignTally<I>): string {
  const counts = OUTCOMES.filter((o) => s.byOutcome[o] > 0).map((o) => `${s.byOutcome[o]} ${o}`);
  const lines = [`${s.runs} runs: ${counts.length > 0 ? counts.join(', ') : 'none'} (${s.uninjected} with no injection)`];
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
