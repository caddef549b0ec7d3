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
  /** A numeric parameter, or `fallback` when absent; throws UsageError when not a number. */
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

export interface ParamDoc {
  description: string;
  default?: string;
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
  /** Scenario-specific parameters (read with ctx.param); shown by `ioemu run --help`-style listings. */
  params?: Record<string, ParamDoc>;
  run(ctx: ScenarioContext): void | Promise<void>;
}

/** A bad command line or scenario input: exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Parameters every scenario accepts: they configure the machine before the
 * scenario starts (the DMA engines' options are applied to both engines).
 */
export const MACHINE_PARAMS: Record<string, ParamDoc & { apply(o: MachineOptions, e: DmaEngineOptions, v: number): void }> = {
  'atc-entries': { description: 'entries of each DMA engine\'s Address Translation Cache', default: '64', apply: (_o, e, v) => void (e.atcEntries = v) },
  'pri-capacity': {
    description: 'each engine\'s PRI Outstanding Page Request Capacity; the IOMMU driver allocates min(64, capacity) page requests',
    default: '64',
    apply: (_o, e, v) => void (e.priCapacity = v),
  },
  'prg-pages': { description: 'largest page request group of an engine, pages', default: '8', apply: (_o, e, v) => void (e.maxPrgPages = v) },
  'pri-timeout-ns': { description: 'virtual ns an engine waits for a page response', default: '10000000', apply: (_o, e, v) => void (e.priTimeoutNs = v) },
  'iotlb-entries': {
    description: 'IOTLB entries of the IOMMU (VT-d iotlbEntries, SMMUv3 iotlbSize)',
    default: 'model default',
    apply: (o, _e, v) => {
      o.vtd = { ...o.vtd, iotlbEntries: v };
      o.smmu = { ...o.smmu, iotlbSize: v };
    },
  },
  'ram-mib': { description: 'guest RAM, MiB', default: '1024', apply: (o, _e, v) => void (o.ramBytes = v * 2 ** 20) },
};

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
  failures: string[];
  violations: Violation[];
  metrics: Record<string, number>;
  series: Record<string, number[]>;
  counters: Record<string, number>;
  /** Page-fault service times (virtual ns) from host.iopf.latencies. */
  iopfLatencies: number[];
  virtualNs: number;
  trace: ChromeTraceSink;
  plans: AppliedPlan[];
  machineRef: Machine;
}

function numberParam(name: string, v: string): number {
  const n = Number(v.replace(/_/g, ''));
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`parameter ${name}: "${v}" is not a number`);
  return n;
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
    if (p !== undefined) p.apply(opts, engine, numberParam(k, v));
  }
  const devices = scenarioDevices(scenario, kind);
  if (Object.keys(engine).length > 0) opts.devices = withEngineOptions(devices, engine);
  else if (devices !== DEFAULT_DEVICES) opts.devices = [...devices];
  return createMachine(kind, opts);
}

/** Check parameter names against the machine-level ones and the scenario's own. */
export function checkParams(s: Scenario, params: Record<string, string>): void {
  for (const k of Object.keys(params)) {
    if (!(k in MACHINE_PARAMS) && !(s.params !== undefined && k in s.params)) {
      const known = [...Object.keys(MACHINE_PARAMS), ...Object.keys(s.params ?? {})];
      throw new UsageError(`unknown parameter "${k}" for scenario ${s.name} (known: ${known.join(', ')})`);
    }
  }
}

/** Run one scenario on a fresh machine. Exceptions from the scenario propagate (the CLI maps them to exit 3). */
export async function runScenario(s: Scenario, o: RunOptions = {}): Promise<RunResult> {
  const kind = o.machine ?? s.machine ?? 'q35-vtd';
  if (!MACHINE_KINDS.includes(kind)) throw new UsageError(`unknown machine "${kind}" (use ${MACHINE_KINDS.join(' or ')})`);
  const seed = o.seed ?? 1;
  const params = { ...(o.params ?? {}) };
  checkParams(s, params);
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
      const v = params[name];
      return v === undefined ? fallback : numberParam(name, v);
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
  await s.run(ctx);
  m.run();
  m.board.scheduler.observeAdvance(undefined);
  trace.sampleCounters(counters, m.now());
  const violations = checkInvariants(m, { dma: false });
  return {
    scenario: s.name,
    machine: kind,
    seed,
    params,
    ok: failures.length === 0 && violations.length === 0,
    failures,
    violations,
    metrics: Object.fromEntries(metrics.values),
    series: Object.fromEntries(metrics.series),
    counters: m.board.counters.snapshot(),
    iopfLatencies: [...m.host.iopf.latencies],
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
