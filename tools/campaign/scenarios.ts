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
import { createMachine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import { classifyViolations, type InjectionRecord } from '../fault/classify.ts';
import { checkInvariants, formatViolations, guard, monitorUnmaps, recordBaseline, type Violation } from '../fault/invariants.ts';
import { randomCommand, REFERENCE, retainedPages, runSequence, SequenceExecutor, type Command } from '../fault/model-based.ts';
import { applyPlan, type FaultPlan } from '../../src/fault/plan.ts';
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
}

/** The command sequence a seed stands for (what modelSequence runs). */
export function sequenceForSeed(seed: number, length?: number): Command[] {
  const rnd = new Prng(seed);
  const n = length ?? rnd.int(1, 20);
  return Array.from({ length: n }, () => randomCommand(() => rnd.float()));
}

export function modelSequence(input: SequenceInput): ScenarioResult {
  const cmds = sequenceForSeed(input.seed, input.length);
  const r = runSequence(input.kind, cmds);
  if (r.ok) return { outcome: 'survived' };
  const outcome = /threw/.test(r.failure ?? '') ? 'exception' : 'broken';
  return { outcome, detail: `command ${r.at} of ${JSON.stringify(cmds)}: ${r.failure}` };
}

export interface PlanInput {
  kind: MachineKind;
  plan: FaultPlan;
  seed?: number;
}

export function planOnOperation(input: PlanInput): ScenarioResult {
  const m = createMachine(input.kind, { seed: input.seed ?? input.plan.seed ?? 1 });
  recordBaseline(m, retainedPages(input.kind));
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
  const applied = applyPlan(m, input.plan);
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

const pointsByKind = new Map<MachineKind, readonly string[]>();

/** The injection points a machine of this kind (default devices) defines, in definition order. */
export function machinePoints(kind: MachineKind): readonly string[] {
  let names = pointsByKind.get(kind);
  if (names === undefined) {
    names = Object.freeze(createMachine(kind).board.faults.all().map((p) => p.name));
    pointsByKind.set(kind, names);
  }
  return names;
}

export interface SweepOptions {
  kind: MachineKind;
  /** Points to sweep (default: every point of the machine); points the machine does not have are left out. */
  points?: readonly InjectionPointName[];
  /** Hit numbers to inject at (default 1, 2, 3). */
  nth?: readonly number[];
  /** Actions (default: fail). */
  actions?: readonly FaultPlan['rules'][number]['action'][];
}

/** Plans failing the nth hit of each point with each action: the systematic sweep a campaign runs. */
export function sweepPlans(o: SweepOptions): PlanInput[] {
  const own = machinePoints(o.kind);
  const points = o.points === undefined ? own : o.points.filter((p) => own.includes(p));
  const out: PlanInput[] = [];
  for (const point of points) {
    for (const nth of o.nth ?? [1, 2, 3]) {
      for (const action of o.actions ?? [{ kind: 'fail' as const }]) {
        out.push({ kind: o.kind, plan: { seed: 1, rules: [{ point, when: { nth }, action }] } });
      }
    }
  }
  return out;
}

/** Plans injecting with a probability at random points of the machine, one per seed (random campaigns). */
export function randomPlans(kind: MachineKind, seeds: readonly number[]): PlanInput[] {
  const points = machinePoints(kind);
  return seeds.map((seed) => {
    const rnd = new Prng(seed);
    const rules = Array.from({ length: rnd.int(1, 3) }, () => {
      const k = rnd.int(0, 3);
      const action = k === 0 ? { kind: 'drop' as const } : k === 1 ? { kind: 'delay' as const, ns: rnd.int(1, 1_000_000) } : k === 2 ? { kind: 'corrupt' as const, xorLo: (1 << rnd.int(0, 31)) >>> 0 } : { kind: 'fail' as const };
      return { point: points[rnd.int(0, points.length - 1)]!, when: { probability: [0.05, 0.2, 0.5][rnd.int(0, 2)]! }, action };
    });
    return { kind, seed, plan: { seed, rules } };
  });
}
