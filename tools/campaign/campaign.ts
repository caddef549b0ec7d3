/**
 * A fault campaign as data (`ioemu campaign`): what it runs (its spec), the
 * list of its runs in a fixed order (each run's full input, so any run
 * replays alone), how the runs split into shards, and the records and
 * summary its results make. Browser-safe: the Node runner (cli/campaign/)
 * executes the runs in worker threads and writes the records as JSON Lines.
 *
 * Sharding follows the test runners' `--shard i/n` (Jest, Playwright,
 * Vitest: 1-based): run `id` belongs to shard `id % n + 1`, so every run is
 * in exactly one shard and the shards get the same mix of points and seeds.
 */
import type { MachineKind } from '../../machines/layout.ts';
import type { InjectionActionKind } from '../../src/fault/injector.ts';
import type { FaultPlan } from '../../src/fault/plan.ts';
import type { InjectionPointName } from '../../machines/points.ts';
import { UsageError } from '../scenario/usage-error.ts';
import { modelSequence, planOnOperation, randomPlans, sweepPlans, type PlanInput, type SequenceInput } from './scenarios.ts';
import type { ScenarioRef, ScenarioResult } from './types.ts';

export const CAMPAIGN_MODES = ['sweep', 'random', 'model', 'plan'] as const;
export type CampaignMode = (typeof CAMPAIGN_MODES)[number];

/** Everything that decides a campaign's runs and their outcomes (shards of one campaign share it). */
export interface CampaignSpec {
  mode: CampaignMode;
  machines: MachineKind[];
  /** random, model, plan: machine/plan seeds seedStart .. seedStart + seeds - 1. */
  seedStart: number;
  seeds: number;
  /** sweep: the points (default every point of each machine), hit numbers and action kinds (default every action a point takes). */
  points?: string[];
  nth?: number[];
  actions?: InjectionActionKind[];
  /** plan: the plan itself (not its file name, so a record replays anywhere). */
  plan?: FaultPlan;
  /** model: commands per sequence (default 1..20 drawn from the seed). */
  length?: number;
  /** Per-run limits: virtual time (ns) and wall time (ms); past either the run is a 'timeout'. */
  maxVirtualNs?: number;
  maxWallMs: number;
}

/** The input of one run: which scenario, on which machine, with which seed, plan and parameters. */
export interface RunInput {
  scenario: 'planOnOperation' | 'modelSequence';
  machine: MachineKind;
  seed: number;
  plan?: FaultPlan;
  params?: { length?: number };
  maxVirtualNs?: number;
}

/** The argument the scenario function of tools/campaign/scenarios.ts takes for a run. */
export function scenarioInput(r: RunInput): PlanInput | SequenceInput {
  const limit = r.maxVirtualNs === undefined ? {} : { maxVirtualNs: r.maxVirtualNs };
  if (r.scenario === 'modelSequence') return { kind: r.machine, seed: r.seed, ...(r.params?.length !== undefined ? { length: r.params.length } : {}), ...limit };
  return { kind: r.machine, seed: r.seed, plan: r.plan!, ...limit };
}

function seedList(spec: CampaignSpec): number[] {
  return Array.from({ length: spec.seeds }, (_, i) => spec.seedStart + i);
}

/** Every run of the campaign, in its fixed order: run `id` is element `id`. Machines outer, then points or seeds. */
export function campaignRuns(spec: CampaignSpec): RunInput[] {
  const limit = spec.maxVirtualNs === undefined ? {} : { maxVirtualNs: spec.maxVirtualNs };
  const plans = (inputs: PlanInput[]): RunInput[] =>
    inputs.map((p) => ({ scenario: 'planOnOperation', machine: p.kind, seed: p.seed ?? p.plan.seed ?? 1, plan: p.plan, ...limit }));
  switch (spec.mode) {
    case 'sweep':
      return spec.machines.flatMap((kind) =>
        plans(sweepPlans({ kind, ...(spec.points ? { points: spec.points as InjectionPointName[] } : {}), ...(spec.nth ? { nth: spec.nth } : {}), ...(spec.actions ? { actions: spec.actions } : {}) })),
      );
    case 'random':
      return spec.machines.flatMap((kind) => plans(randomPlans(kind, seedList(spec))));
    case 'plan':
      return spec.machines.flatMap((kind) => seedList(spec).map((seed): RunInput => ({ scenario: 'planOnOperation', machine: kind, seed, plan: spec.plan!, ...limit })));
    case 'model':
      return spec.machines.flatMap((kind) =>
        seedList(spec).map((seed): RunInput => ({ scenario: 'modelSequence', machine: kind, seed, ...(spec.length !== undefined ? { params: { length: spec.length } } : {}), ...limit })),
      );
  }
}

/** The i-th of n parts of a campaign (1-based, as `--shard i/n`). */
export interface Shard {
  index: number;
  count: number;
}

/** "2/4" -> { index: 2, count: 4 }; throws UsageError naming the accepted form. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(count) && count >= 1 && count <= 100_000 && index >= 1 && index <= count)) {
    throw new UsageError(`--shard ${text}: must be i/n with 1 <= i <= n <= 100000 (the i-th of n parts, 1-based)`);
  }
  return { index, count };
}

/** Does run `id` belong to `shard`? Every run is in exactly one shard of a count. */
export function inShard(id: number, shard: Shard | undefined): boolean {
  return shard === undefined || id % shard.count === shard.index - 1;
}

/** The runs of one shard (all of them without one), with their ids. */
export function shardRuns(all: readonly RunInput[], shard: Shard | undefined): { id: number; input: RunInput }[] {
  const out: { id: number; input: RunInput }[] = [];
  all.forEach((input, id) => {
    if (inShard(id, shard)) out.push({ id, input });
  });
  return out;
}

/** Run one campaign run in this thread (what a worker does; and a replay). */
export function runCampaignInput(r: RunInput): ScenarioResult {
  const input = scenarioInput(r);
  return r.scenario === 'modelSequence' ? modelSequence(input as SequenceInput) : planOnOperation(input as PlanInput);
}

/** The worker's reference to runCampaignInput. */
export const CAMPAIGN_RUN: ScenarioRef = { module: new URL('./campaign.ts', import.meta.url).href, exportName: 'runCampaignInput' };
