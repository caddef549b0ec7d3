/**
 * Scenarios for campaigns: each an exported function (input) => ScenarioResult
 * that a worker imports by name, and that a test or the CLI can call directly
 * with a failure's input to replay it.
 *
 * - modelSequence({ kind, seed, length? }): a random command sequence drawn
 *   from `seed` (tools/fault/model-based.ts), checked against the reference
 *   model and the invariants.
 * - planOnOperation({ kind, plan, seed? }): a fault plan applied to a fixed
 *   operation touching every front end (VFIO map, SVA bind and PASID DMA,
 *   iommufd map/attach/DMA, HWPT replace, unbind); the run stops at the first
 *   step the injection made fail; then the invariants are checked with the
 *   state live and after every process exited.
 */
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import { classifyViolations, type InjectionRecord } from '../fault/classify.ts';
import { checkInvariants, formatViolations, guard, monitorUnmaps, recordBaseline, type Violation } from '../fault/invariants.ts';
import { randomCommand, REFERENCE, retainedPages, runSequence, SequenceExecutor, type Command } from '../fault/model-based.ts';
import { applyPlan, type FaultPlan, type PlanAction } from '../../src/fault/plan.ts';
import type { InjectionActionKind } from '../../src/fault/injector.ts';
import type { InjectionPointName } from '../../machines/points.ts';
import { Prng } from '../../src/sim/prng.ts';
import type { ScenarioRef, ScenarioResult } from './types.ts';

const HERE = new URL('./scenarios.ts', import.meta.url).href;

/** References to the scenarios below, for runCampaign({ scenario }). */
export const SCENARIOS = {
  modelSequence: { module: HERE, exportName: 'modelSequence' },
  planOnOperation: { module: HERE, exportName: 'planOnOperation' },
} as const satisfies Record<string, ScenarioRef>;

export interface SequenceInput {
  kind: MachineKind;
  seed: number;
  /** Commands in the sequence (default: 1..20, drawn from the seed). */
  length?: number;
  /** Virtual time the run may not pass (ns); past it the run ends as a 'timeout'. */
  maxVirtualNs?: number;
}

/** A machine of this kind whose scheduler stops the run at `maxVirtualNs` (VirtualTimeLimit). */
function limitedMachine(kind: MachineKind, seed: number, maxVirtualNs: number | undefined): Machine {
  // SVA runs fault pages in through PRI: on virt-smmuv3 that is the posted SMMUv3 PRI series (machines/README.md).
  const m = createMachine(kind, { seed, smmuPri: 'posted-series' });
  if (maxVirtualNs !== undefined) m.board.scheduler.timeLimitNs = maxVirtualNs;
  return m;
}

/** The outcome of a run the virtual time limit stopped. */
function overLimit(m: Machine): ScenarioResult | undefined {
  const s = m.board.scheduler;
  return s.limitReached ? { outcome: 'timeout', detail: `virtual time passed the run's limit of ${s.timeLimitNs} ns` } : undefined;
}

/** The command sequence a seed stands for (what modelSequence runs). */
export function sequenceForSeed(seed: number, length?: number): Command[] {
  const rnd = new Prng(seed);
  const n = length ?? rnd.int(1, 20);
  return Array.from({ length: n }, () => randomCommand(() => rnd.float()));
}

export function modelSequence(input: SequenceInput): ScenarioResult {
  const cmds = sequenceForSeed(input.seed, input.length);
  let m: Machine | undefined;
  const r = runSequence(() => (m = limitedMachine(input.kind, 1, input.maxVirtualNs)), cmds, { retained: retainedPages(input.kind) });
  if (r.ok) return { outcome: 'survived' };
  const limited = m === undefined ? undefined : overLimit(m);
  if (limited !== undefined) return { ...limited, detail: `${limited.detail}, at command ${r.at} of ${JSON.stringify(cmds)}` };
  const outcome = /threw/.test(r.failure ?? '') ? 'exception' : 'broken';
  return { outcome, detail: `command ${r.at} of ${JSON.stringify(cmds)}: ${r.failure}` };
}

export interface PlanInput {
  kind: MachineKind;
  plan: FaultPlan;
  seed?: number;
  /** Virtual time the run may not pass (ns); past it the run ends as a 'timeout'. */
  maxVirtualNs?: number;
}

export function planOnOperation(input: PlanInput): ScenarioResult {
  const m = limitedMachine(input.kind, input.seed ?? input.plan.seed ?? 1, input.maxVirtualNs);
  const r = planOnMachine(m, input.plan);
  return r.outcome === 'exception' ? (overLimit(m) ?? r) : r;
}

/** The plan on the fixed operation; `reached` (if given) collects the hits each point took while the plan was armed. */
function planOnMachine(m: Machine, plan: FaultPlan, reached?: Map<string, number>): ScenarioResult {
  recordBaseline(m, retainedPages(m.kind));
  monitorUnmaps(m);
  const e = new SequenceExecutor(() => m);
  const s = guard(m, () => e.setup());
  if ('exception' in s) return { outcome: 'exception', detail: `setup threw: ${s.exception}` };
  const injected: Record<string, number> = {};
  const records: InjectionRecord[] = [];
  const off = m.board.faults.onInjection((p, a) => {
    injected[p.name] = (injected[p.name] ?? 0) + 1;
    records.push({ point: p.name, action: a.kind });
  });
  const applied = applyPlan(m, plan);
  for (const p of reached === undefined ? [] : m.board.faults.all()) reached!.set(p.name, -p.hits);
  let failedStep: string | undefined;
  for (let i = 0; i < REFERENCE.length && failedStep === undefined; i++) {
    const c = REFERENCE[i]!;
    const g = guard(m, () => e.step(c));
    if ('exception' in g) {
      applied.disarm();
      off();
      return { outcome: 'exception', detail: `${JSON.stringify(c)} threw: ${g.exception}`, injected };
    }
    if (g.value !== undefined) failedStep = `step ${i} ${JSON.stringify(c)}: ${g.value}`;
  }
  const ran = guard(m, () => m.board.scheduler.run(100_000));
  for (const p of reached === undefined ? [] : m.board.faults.all()) reached!.set(p.name, (reached!.get(p.name) ?? 0) + p.hits);
  applied.disarm();
  off();
  if ('exception' in ran) return { outcome: 'exception', detail: `running the machine threw: ${ran.exception}`, injected };
  // Violations a stale cache explains (and a flush removes) are what the architecture permits, not breakage.
  const permitted: string[] = [];
  const judge = (v: Violation[], when: string): ScenarioResult | undefined => {
    const c = classifyViolations(m, v, records);
    if (c.outcome === 'clean') return undefined;
    if (c.outcome === 'permitted') {
      permitted.push(`${when}: ${formatViolations(c.stale).split('\n')[0]} (${c.reasons.join('; ')})`);
      return undefined;
    }
    const outcome = c.violations.some((x) => x.kind === 'exception') ? 'exception' : 'broken';
    return { outcome, detail: `${failedStep ?? 'all steps ok'}; ${when}: ${formatViolations(c.violations)}`, injected };
  };
  const live = judge(checkInvariants(m), 'state live');
  if (live !== undefined) return live;
  const td = guard(m, () => {
    for (const p of [...m.host.processes.values()]) p.exit();
    m.run();
  });
  if ('exception' in td) return { outcome: 'exception', detail: `exit threw: ${td.exception}`, injected };
  const after = judge(checkInvariants(m), 'after exit');
  if (after !== undefined) return after;
  if (permitted.length > 0) return { outcome: 'permitted', detail: `${failedStep ?? 'all steps ok'}; ${permitted.join(' | ')}`, injected };
  return failedStep === undefined ? { outcome: 'survived', injected } : { outcome: 'errored', detail: failedStep, injected };
}

/** What a campaign needs to know of one point: its name, the actions it takes, the bits its corruptions reach. */
export interface PointInfo {
  readonly name: string;
  readonly actions: readonly InjectionActionKind[];
  readonly corruptMask: readonly [number, number];
}

const pointsByKind = new Map<MachineKind, readonly PointInfo[]>();

/** The injection points a machine of this kind (default devices) defines, in definition order, with their actions. */
export function machinePointInfo(kind: MachineKind): readonly PointInfo[] {
  let points = pointsByKind.get(kind);
  if (points === undefined) {
    points = Object.freeze(createMachine(kind).board.faults.all().map((p) => Object.freeze({ name: p.name, actions: p.actions, corruptMask: p.corruptMask })));
    pointsByKind.set(kind, points);
  }
  return points;
}

/** The names of the injection points a machine of this kind (default devices) defines, in definition order. */
export function machinePoints(kind: MachineKind): readonly string[] {
  return machinePointInfo(kind).map((p) => p.name);
}

/** The action of a kind a sweep injects: a 50 us delay, a corruption of the lowest bit the point's code reads. */
export function defaultAction(kind: InjectionActionKind, p: PointInfo): PlanAction {
  switch (kind) {
    case 'fail':
    case 'drop':
      return { kind };
    case 'delay':
      return { kind, ns: 50_000 };
    case 'corrupt': {
      const [lo, hi] = p.corruptMask;
      return lo !== 0 ? { kind, xorLo: (lo & -lo) >>> 0 } : { kind, xorLo: 0, xorHi: (hi & -hi) >>> 0 };
    }
  }
}

export interface SweepOptions {
  kind: MachineKind;
  /**
   * Points to sweep; points the machine does not have are left out. Default:
   * every point the fixed operation reaches (operationPoints), each only at
   * hit numbers it reaches.
   */
  points?: readonly InjectionPointName[];
  /** Hit numbers to inject at (default 1, 2, 3). */
  nth?: readonly number[];
  /** Kinds of action (default: every action each point takes, with defaultAction's parameters); a point that cannot take one is left out of it. */
  actions?: readonly InjectionActionKind[];
}

/** Plans injecting the nth hit of each point with each action: the systematic sweep a campaign runs. */
export function sweepPlans(o: SweepOptions): PlanInput[] {
  const points: readonly (PointInfo & { hits?: number })[] =
    o.points === undefined ? operationPoints(o.kind) : machinePointInfo(o.kind).filter((p) => o.points!.includes(p.name as InjectionPointName));
  const out: PlanInput[] = [];
  for (const p of points) {
    for (const nth of o.nth ?? [1, 2, 3]) {
      if (p.hits !== undefined && nth > p.hits) continue;
      for (const kind of o.actions ?? p.actions) {
        if (!p.actions.includes(kind)) continue;
        out.push({ kind: o.kind, plan: { seed: 1, rules: [{ point: p.name, when: { nth }, action: defaultAction(kind, p) }] } });
      }
    }
  }
  return out;
}

/** A point the fixed operation reaches, and how many times it does. */
export interface ReachedPoint extends PointInfo {
  readonly hits: number;
}

const reachedByKind = new Map<MachineKind, readonly ReachedPoint[]>();

/**
 * The points of a machine of this kind that the fixed operation of
 * planOnOperation hits while a plan is armed, in definition order: the only
 * ones a plan on it can inject at (found by running it once with no rule).
 */
export function operationPoints(kind: MachineKind): readonly ReachedPoint[] {
  let points = reachedByKind.get(kind);
  if (points === undefined) {
    const hits = new Map<string, number>();
    const r = planOnMachine(createMachine(kind, { smmuPri: 'posted-series' }), { rules: [] }, hits);
    if (r.outcome !== 'survived') throw new Error(`the fixed operation does not run cleanly on ${kind}: ${r.outcome} ${r.detail ?? ''}`);
    points = Object.freeze(machinePointInfo(kind).flatMap((p) => ((hits.get(p.name) ?? 0) > 0 ? [Object.freeze({ ...p, hits: hits.get(p.name)! })] : [])));
    reachedByKind.set(kind, points);
  }
  return points;
}

/**
 * Plans injecting with a probability at random points of the machine, one per
 * seed (random campaigns): 1 to 3 rules, each a point the fixed operation
 * reaches on that machine (operationPoints) and one of the actions it takes
 * (a delay of 1 ns..1 ms, a corruption of one bit the point's code reads),
 * injected with a probability that makes 1, 2 or 4 injections the expected
 * number over the hits the operation makes there (1 for a point it hits
 * once or twice), so a point hit hundreds of times is not hit every time.
 */
export function randomPlans(kind: MachineKind, seeds: readonly number[]): PlanInput[] {
  const points = operationPoints(kind);
  return seeds.map((seed) => {
    const rnd = new Prng(seed);
    const rules = Array.from({ length: rnd.int(1, 3) }, () => {
      const p = points[rnd.int(0, points.length - 1)]!;
      const k = p.actions[rnd.int(0, p.actions.length - 1)]!;
      let action: PlanAction;
      if (k === 'delay') action = { kind: k, ns: rnd.int(1, 1_000_000) };
      else if (k === 'corrupt') {
        const bits = [...bitsOf(p.corruptMask[0]).map((b) => [b, 0] as const), ...bitsOf(p.corruptMask[1]).map((b) => [b, 1] as const)];
        const [bit, word] = bits[rnd.int(0, bits.length - 1)]!;
        action = word === 0 ? { kind: k, xorLo: (1 << bit) >>> 0 } : { kind: k, xorLo: 0, xorHi: (1 << bit) >>> 0 };
      } else action = { kind: k };
      const expected = [1, 2, 4][rnd.int(0, 2)]!;
      const probability = Math.min(1, Number((expected / p.hits).toPrecision(3)));
      return { point: p.name, when: { probability }, action };
    });
    return { kind, seed, plan: { seed, rules } };
  });
}

function bitsOf(mask: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < 32; b++) if (((mask >>> b) & 1) !== 0) out.push(b);
  return out;
}
