/** Types shared by the campaign runner, its workers and scenario modules. */

/** How one run of a scenario ended. */
export type Outcome =
  /** Every step succeeded (any injections were absorbed) and every invariant holds. */
  | 'survived'
  /** A step failed cleanly (an errno, a DMA fault) and every invariant holds. */
  | 'errored'
  /**
   * Invariants probed through the caches failed, but only as the architecture
   * allows: an injection left a cache stale (a corrupted-but-valid STE kept
   * until CFGI, an invalidation that never executed) and every violation went
   * away once the caches were flushed (tools/fault/classify.ts). Not a failure.
   */
  | 'permitted'
  /** An invariant was violated (or the result disagreed with the reference model). */
  | 'broken'
  /** An exception escaped the emulated kernel or a model. */
  | 'exception'
  /** The run did not finish within the campaign's time limit (a hang). */
  | 'timeout';

export interface ScenarioResult {
  outcome: Outcome;
  /** What went wrong, or what the failing step returned. */
  detail?: string;
  /** Injections made, per injection point. */
  injected?: Record<string, number>;
}

/** One unit of work: `input` goes to the scenario function as is (structured-clonable), and replays the run. */
export interface CampaignJob<I = unknown> {
  id: number;
  input: I;
}

/** A scenario: exported function `exportName` of module `module` (a file URL or path), called as fn(input). */
export interface ScenarioRef {
  module: string;
  exportName: string;
}

export type WorkerRequest = { job: CampaignJob; scenario: ScenarioRef };
export type WorkerReply = { id: number; result: ScenarioResult; ms: number };
