/**
 * Systematic fail-nth (DESIGN.md §7), in the manner of the kernel's
 * iommufd_fail_nth selftest: run an operation on a fresh machine with its
 * 1st, 2nd, ... injectable step failing (counted across every injection
 * point, or a chosen subset), until a run completes with no injection. After
 * each run: the operation must have returned (a result or -errno, never an
 * exception), the invariants must hold with the operation's state still
 * live, and again after every process exited (no page leaked).
 */
import { createMachine, type Machine } from '../../machines/machine.ts';
import type { MachineKind } from '../../machines/layout.ts';
import type { InjectionPoint } from '../../src/fault/injector.ts';
import { checkInvariants, guard, monitorUnmaps, recordBaseline, type InvariantOptions, type Violation } from './invariants.ts';

export interface FailNthOperation<S> {
  name: string;
  machine: MachineKind | (() => Machine);
  /** Everything before the operation (not injected). Throw to abort: setup must succeed. */
  setup(m: Machine): S;
  /** The operation under test: a result >= 0 or -errno. */
  run(m: Machine, s: S): number;
  /** After the run, before the final check (default: every process exits, then the machine runs idle). */
  teardown?(m: Machine, s: S): void;
}

export interface FailNthOptions {
  /** Which points may be failed (default: every point). */
  points?: readonly string[] | ((p: InjectionPoint) => boolean);
  /** Stop after this many steps (default 2000). */
  maxSteps?: number;
  invariants?: InvariantOptions;
}

export interface FailNthStep {
  n: number;
  /** The point failed at step n (undefined: the run completed with no injection). */
  point: string | undefined;
  /** What the operation returned, or the exception it threw. */
  result: number | string;
  /** Invariants broken with the state live / after teardown. */
  live: Violation[];
  after: Violation[];
}

export interface FailNthReport {
  name: string;
  /** Runs in which a step was failed (the last, uninjected run not counted). */
  steps: number;
  /** Injected failures per point. */
  byPoint: Partial<Record<string, number>>;
  /** Pages an uninjected run leaves allocated after teardown (driver state kept for the machine's life); tolerated by the leak check. */
  retainedPages: number;
  /** Runs where the operation still succeeded although a step failed (a step it may tolerate). */
  survived: number;
  /** The uninjected run completed and returned >= 0. */
  completed: boolean;
  /** Every problem: exceptions, unexpected results, invariant violations, per step. */
  problems: string[];
  records: FailNthStep[];
}

function freshMachine(spec: MachineKind | (() => Machine)): Machine {
  return typeof spec === 'function' ? spec() : createMachine(spec);
}

function defaultTeardown(m: Machine): void {
  for (const p of [...m.host.processes.values()]) p.exit();
  m.run();
}

/** Run `op` failing its 1st, 2nd, ... step in turn; see the module comment. */
export function runFailNth<S>(op: FailNthOperation<S>, opts: FailNthOptions = {}): FailNthReport {
  const report: FailNthReport = { name: op.name, retainedPages: 0, steps: 0, byPoint: {}, survived: 0, completed: false, problems: [], records: [] };
  const filter =
    opts.points === undefined
      ? () => true
      : typeof opts.points === 'function'
        ? opts.points
        : ((names: Set<string>) => (p: InjectionPoint) => names.has(p.name))(new Set(opts.points));
  const max = opts.maxSteps ?? 2000;
  // A reference run with nothing injected: pages the drivers keep after teardown (lazily allocated state) are not leaks.
  const ref = freshMachine(op.machine);
  const idle = ref.host.allocator.pagesInUse;
  const rs = op.setup(ref);
  op.run(ref, rs);
  (op.teardown ?? defaultTeardown)(ref, rs);
  report.retainedPages = Math.max(0, ref.host.allocator.pagesInUse - idle);
  for (let n = 1; n <= max; n++) {
    const m = freshMachine(op.machine);
    recordBaseline(m, report.retainedPages);
    monitorUnmaps(m);
    const s = op.setup(m);
    const faults = m.board.faults;
    let point: string | undefined;
    const off = faults.onInjection((p) => {
      point ??= p.name;
    });
    faults.failNthGlobal(n, filter);
    const g = guard(m, () => op.run(m, s));
    faults.disarmAll();
    off();
    const result = 'value' in g ? g.value : `exception: ${g.exception}`;
    const live = checkInvariants(m, opts.invariants);
    const td = guard(m, () => (op.teardown ?? defaultTeardown)(m, s));
    if ('exception' in td) defaultTeardown(m);
    const after = checkInvariants(m, { ...opts.invariants }).filter((v) => !live.some((l) => l.kind === 'exception' && l.message === v.message));
    report.records.push({ n, point, result, live, after });
    const tag = `${op.name} step ${n}${point !== undefined ? ` (${point} failed)` : ' (no injection)'}`;
    if (typeof result === 'string') report.problems.push(`${tag}: ${result}`);
    for (const v of live) report.problems.push(`${tag}, state live: [${v.kind}] ${v.message}`);
    for (const v of after) report.problems.push(`${tag}, after teardown: [${v.kind}] ${v.message}`);
    if (point === undefined) {
      report.completed = typeof result === 'number' && result >= 0;
      if (!report.completed) report.problems.push(`${tag}: the uninjected run returned ${result}`);
      return report;
    }
    report.steps++;
    report.byPoint[point] = (report.byPoint[point] ?? 0) + 1;
    if (typeof result === 'number' && result >= 0) report.survived++;
  }
  report.problems.push(`${op.name}: still injecting after ${max} steps`);
  return report;
}
