/**
 * Scenarios: what `ioemu run` and `ioemu sweep` execute.
 *
 * A scenario is a TypeScript module whose default export is a `Scenario`
 * (`{ name, description, machine?, params?, run(ctx) }`), or a JSON file
 * describing a list of steps (tools/scenario/json-scenario.ts). The runner
 * builds the machine (kind, seed and the machine-level parameters below),
 * collects the whole trace, arms the `--inject` plan, runs the scenario,
 * runs the machine until idle, then checks the machine's invariants
 * (tools/fault/invariants.ts) and gathers the figures a report or a sweep needs.
 */
import { createMachine, DEFAULT_DEVICES, type DeviceSpec, type Machine, type MachineOptions, type TopologySpec } from '../../machines/machine.ts';
import { isBridgeSpec } from '../../machines/topology.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { DmaEngineOptions } from '../../devices/dma-engine/dma-engine.ts';
import { applyPlan, PlanError, type AppliedPlan, type FaultPlan } from '../../src/fault/plan.ts';
import { checkInvariants, recordBaseline, type Violation } from '../fault/invariants.ts';
import { ChromeTraceSink } from '../../src/trace/chrome-trace.ts';
import { priServiceTimes } from '../report/figures.ts';
import { MACHINE_PARAMS, parseParam, resolveParams, type ParamSpec } from './params.ts';
import { UsageError } from './usage-error.ts';
import { thrownInsideIoemu } from './blame.ts';

export { UsageError } from './usage-error.ts';
export { MACHINE_PARAMS, type ParamDoc, type ParamSpec } from './params.ts';

export const MACHINE_KINDS: readonly MachineKind[] = ['virt-smmuv3', 'q35-vtd'];

/** Figures a scenario records; they become report rows and sweep columns. */
export class Metrics {
  readonly values = new Map<string, number>();
  readonly series = new Map<string, number[]>();

  /** Set a figure (the last value wins). */
  set(name: string, value: number): void {
    this.values.set(name, value);
  }

  /** Add to a figure (starting at 0). */
  add(name: string, n = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + n);
  }

  /** Append one sample to a named series (e.g. a latency in ns). */
  sample(name: string, value: number): void {
    const s = this.series.get(name) ?? [];
    s.push(value);
    this.series.set(name, s);
  }

  get(name: string): number | undefined {
    return this.values.get(name);
  }
}

export interface ScenarioContext {
  readonly machine: Machine;
  readonly kind: MachineKind;
  readonly seed: number;
  /** Every `--param name=value` given (machine-level ones included), as strings. */
  readonly params: Readonly<Record<string, string>>;
  /** A numeric parameter (already checked against its schema), or `fallback` when absent. */
  param(name: string, fallback: number): number;
  /** One line of the human-readable narrative (stdout for `ioemu run`, silent in sweeps). */
  say(line?: string): void;
  readonly metrics: Metrics;
  /** The `--inject` plan, already armed on the machine before run() started (undefined without --inject). */
  readonly plan: FaultPlan | undefined;
  /** Arm a plan now (replacing hooks on the points it names); its stats appear in the result. */
  inject(plan: FaultPlan | unknown): AppliedPlan;
  /** Mark the scenario as failed (exit status 1) without stopping it. */
  fail(message: string): void;
  /** `fail(message)` unless `cond`; returns `cond`. */
  check(cond: boolean, message: string): boolean;
}

/** Machine options a scenario may fix (the runner sets seed, devices and tracing itself). */
export type ScenarioMachineOptions = Omit<MachineOptions, 'seed' | 'devices' | 'trace'>;

export interface Scenario {
  name: string;
  description: string;
  /** The machine it runs on unless `--machine` says otherwise (default q35-vtd). */
  machine?: MachineKind;
  /**
   * The machine's topology, when the scenario brings its own devices (its
   * own device models, bridges, placement): endpoints and bridges as
   * machines/topology.ts describes them, or a function of the machine kind.
   * Default: CONTRACT.md's default devices.
   */
  devices?: readonly TopologySpec[] | ((kind: MachineKind) => readonly TopologySpec[]);
  /** Other machine options (vfioContainer, smmu, vtd, ramBytes); `--param ram-mib` and the like apply on top. */
  options?: ScenarioMachineOptions;
  /**
   * Scenario-specific parameters (read with ctx.param), each with its type
   * and range: values are checked before the run starts, and `ioemu list`
   * shows them.
   */
  params?: Record<string, ParamSpec>;
  run(ctx: ScenarioContext): void | Promise<void>;
}

/**
 * Pages an IOMMU driver allocates on first use and keeps for the machine's
 * life (the SMMUv3 driver's SVA structures); the leak check tolerates them.
 */
export const RETAINED_PAGES: Record<MachineKind, number> = { 'virt-smmuv3': 1, 'q35-vtd': 0 };

export interface RunOptions {
  machine?: MachineKind;
  seed?: number;
  params?: Record<string, string>;
  plan?: FaultPlan;
  /** Trace every configuration read as its own event (default: only each function's `<bdf>.config.reads` counter). */
  traceConfigReads?: boolean;
  /** Narrative lines (default: dropped). */
  say?: (line: string) => void;
}

export interface RunResult {
  scenario: string;
  machine: MachineKind;
  seed: number;
  params: Record<string, string>;
  ok: boolean;
  /** An exception that ended the run (tools/scenario/blame.ts says whose it was). */
  thrown?: { error: unknown; insideIoemu: boolean };
  failures: string[];
  violations: Violation[];
  metrics: Record<string, number>;
  series: Record<string, number[]>;
  counters: Record<string, number>;
  /** The host's page-fault handling times (virtual ns: a group reaching its I/O page-fault queue to its response), host.iopf.latencies' sample (every group up to 10,000). */
  iopfLatencies: number[];
  /** Groups host.iopf.latencies saw, and their mean (exact, whatever the sample kept). */
  iopfGroups: number;
  iopfMeanNs: number;
  /** PRI service times at the devices (virtual ns: a group sent to its response received; tools/report/figures.ts priServiceTimes). */
  priServiceNs: number[];
  virtualNs: number;
  trace: ChromeTraceSink;
  plans: AppliedPlan[];
  machineRef: Machine;
}

/** Apply DMA-engine options to every DMA engine of a topology, bridges' children included. */
function withEngineOptions(specs: readonly TopologySpec[], engine: DmaEngineOptions): TopologySpec[] {
  return specs.map((s): TopologySpec => {
    if (isBridgeSpec(s)) return s.children === undefined ? s : { ...s, children: withEngineOptions(s.children, engine) };
    return s.kind === 'dma-engine' ? ({ ...s, engine: { ...s.engine, ...engine } } satisfies DeviceSpec) : s;
  });
}

/** The topology a scenario declares for a machine kind (default: the default devices). */
export function scenarioDevices(s: Pick<Scenario, 'devices'> | undefined, kind: MachineKind): readonly TopologySpec[] {
  const d = s?.devices;
  return d === undefined ? DEFAULT_DEVICES : typeof d === 'function' ? d(kind) : d;
}

/** Build the machine a run uses: kind, seed, the scenario's topology and options, machine-level parameters. */
export function machineFor(kind: MachineKind, seed: number, params: Record<string, string>, scenario?: Pick<Scenario, 'devices' | 'options'>): Machine {
  const opts: MachineOptions = { ramBytes: 2 ** 30, ...scenario?.options, seed };
  const engine: DmaEngineOptions = {};
  for (const [k, v] of Object.entries(params)) {
    const p = MACHINE_PARAMS[k];
    if (p !== undefined) p.apply(opts, engine, parseParam(k, p, v));
  }
  const devices = scenarioDevices(scenario, kind);
  if (Object.keys(engine).length > 0) opts.devices = withEngineOptions(devices, engine);
  else if (devices !== DEFAULT_DEVICES) opts.devices = [...devices];
  return createMachine(kind, opts);
}

/** Check parameters against the machine-level schema and the scenario's own: names and values (throws UsageError). */
export function checkParams(s: Scenario, params: Record<string, string>): Record<string, number> {
  return resolveParams(s.name, s.params, params);
}

/**
 * Run one scenario on a fresh machine. Bad parameters or a bad plan throw
 * UsageError before anything runs; an exception during the run ends it and
 * is reported in the result (`thrown`, and a failure), with what the run did
 * until then.
 */
export async function runScenario(s: Scenario, o: RunOptions = {}): Promise<RunResult> {
  const kind = o.machine ?? s.machine ?? 'q35-vtd';
  if (!MACHINE_KINDS.includes(kind)) throw new UsageError(`unknown machine "${kind}" (use ${MACHINE_KINDS.join(' or ')})`);
  const seed = o.seed ?? 1;
  const params = { ...(o.params ?? {}) };
  const values = checkParams(s, params);
  const m = machineFor(kind, seed, params, s);
  recordBaseline(m, RETAINED_PAGES[kind]);
  const trace = new ChromeTraceSink(m.board.tracer, { scenario: s.name, machine: kind, seed: String(seed), ...prefixed(params) });
  m.board.rc.traceConfigReads = o.traceConfigReads === true;
  // Counters over time: each becomes a track that steps where its value changed, sampled when the clock moves on.
  const counters = m.board.counters;
  trace.sampleChangedCounters(counters, m.now());
  m.board.scheduler.observeAdvance((before) => trace.sampleChangedCounters(counters, before));
  const metrics = new Metrics();
  const failures: string[] = [];
  const plans: AppliedPlan[] = [];
  const say = o.say ?? (() => {});
  if (o.plan !== undefined) {
    try {
      plans.push(applyPlan(m, o.plan));
    } catch (e) {
      // A plan naming a point this machine does not have, or an action a point cannot take: the user's input.
      if (e instanceof PlanError) throw new UsageError(`--inject: ${e.message}`);
      throw e;
    }
  }
  const ctx: ScenarioContext = {
    machine: m,
    kind,
    seed,
    params,
    param(name, fallback) {
      return values[name] ?? fallback;
    },
    say: (line = '') => say(line),
    metrics,
    plan: o.plan,
    inject(plan) {
      const a = applyPlan(m, plan);
      plans.push(a);
      return a;
    },
    fail(message) {
      failures.push(message);
    },
    check(cond, message) {
      if (!cond) failures.push(message);
      return cond;
    },
  };
  let thrown: RunResult['thrown'];
  try {
    await s.run(ctx);
    m.run();
  } catch (e) {
    // The run ends here; what it did so far (trace, counters, figures) is still reported.
    thrown = { error: e, insideIoemu: thrownInsideIoemu(e) };
    failures.push(`${thrown.insideIoemu ? 'ioemu threw (a fault inside ioemu)' : 'the scenario threw'}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  m.board.scheduler.observeAdvance(undefined);
  trace.sampleCounters(counters, m.now());
  // After an exception the machine's state is whatever the throw left: its invariants are not judged.
  const violations = thrown === undefined ? checkInvariants(m, { dma: false }) : [];
  return {
    scenario: s.name,
    machine: kind,
    seed,
    params,
    ok: failures.length === 0 && violations.length === 0,
    ...(thrown !== undefined ? { thrown } : {}),
    failures,
    violations,
    metrics: Object.fromEntries(metrics.values),
    series: Object.fromEntries(metrics.series),
    counters: m.board.counters.snapshot(),
    iopfLatencies: m.host.iopf.latencies.sample,
    iopfGroups: m.host.iopf.latencies.count,
    iopfMeanNs: m.host.iopf.latencies.mean,
    priServiceNs: priServiceTimes(trace.events),
    virtualNs: m.now(),
    trace,
    plans,
    machineRef: m,
  };
}

function prefixed(params: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [`param.${k}`, v]));
}

/** Is `x` shaped like a Scenario (for modules loaded at run time)? */
export function isScenario(x: unknown): x is Scenario {
  const o = x as Partial<Scenario> | undefined;
  return typeof o === 'object' && o !== null && typeof o.name === 'string' && typeof o.run === 'function';
}
