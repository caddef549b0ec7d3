/**
 * When V8 optimises a campaign worker's code.
 *
 * V8 counts the bytecode each function runs against an "interrupt budget";
 * a function that spends its budget is queued for the optimising compiler
 * (TurboFan), which runs on the process's background threads. A campaign
 * run builds and tears down a whole machine, so a worker calls thousands of
 * distinct functions a few times per run, and with the default budget
 * (67,584 in Node 20's V8) hundreds of them reach TurboFan over the first
 * thousand runs, 10 ms of compiler time each on average, for code that each
 * run calls once. Each worker is an isolate of its own and pays that again,
 * so on 2 cores two workers spend most of the second core compiling.
 *
 * A budget about 15 times the default leaves such lukewarm functions in
 * the baseline tiers and still optimises the hot ones within a few runs:
 * in alternating rounds of 200 runs of `campaign random` (docs/performance.md),
 * two workers finished 20–35% sooner and used 15–30% less CPU, and one
 * worker ran as fast as before. Larger budgets (4,000,000) slowed one worker.
 *
 * V8's flags belong to the process: every isolate in it (the caller's
 * thread too) reads them when it next resets a function's budget. So the
 * runner sets the flag only if the process was not started with a budget
 * of its own (`node --interrupt-budget=N`; NODE_OPTIONS cannot carry it),
 * and a caller that wants V8's defaults untouched passes `tiering: 'default'`.
 */
import { setFlagsFromString } from 'node:v8';

/** The interrupt budget campaign workers run with (V8's default is 67,584 bytes of bytecode). */
export const CAMPAIGN_INTERRUPT_BUDGET = 1_000_000;

/**
 * The V8 flag the runner sets for a campaign, or undefined when the process
 * was started with a budget of its own (then that one stands).
 */
export function campaignTieringFlag(execArgv: readonly string[]): string | undefined {
  // V8 takes both spellings of a flag's words (interrupt-budget and interrupt_budget).
  if (execArgv.some((w) => /^--interrupt[-_]budget(=|$)/.test(w))) return undefined;
  return `--interrupt-budget=${CAMPAIGN_INTERRUPT_BUDGET}`;
}

let applied = false;

/** Raise the process's interrupt budget for campaign workers, once per process (see above). */
export function useCampaignTiering(): void {
  if (applied) return;
  applied = true;
  const flag = campaignTieringFlag(process.execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
}
