/** What the scenario commands (run, sweep) share: the output channel, plan files, a run's summary and its exception. */
import { PlanError, applyPlan, type FaultPlan } from '../../src/fault/plan.ts';
import { formatViolations } from '../../tools/fault/invariants.ts';
import { fmtNs } from '../../tools/report/html.ts';
import { descriptorLatencies, hitRates, iopfStats, stats } from '../../tools/report/figures.ts';
import { machineFor, UsageError, type RunResult, type Scenario } from '../../tools/scenario/scenario.ts';
import type { MachineKind } from '../../machines/layout.ts';
import { readPlanFile } from '../fault-plan-file.ts';

export interface Io {
  out(s: string): void;
  err(s: string): void;
  /** stderr is a terminal (progress is then a live line). */
  errIsTTY?: boolean;
  /** Its width in columns. */
  columns?: number;
}

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, INTERNAL: 3 } as const;

/** A plan file named by an option, validated; its problems are a UsageError naming the option and file. */
export function readPlanOption(option: string, path: string): FaultPlan {
  try {
    return readPlanFile(path);
  } catch (e) {
    if (e instanceof PlanError) throw new UsageError(`${option} ${e.message}`);
    throw new UsageError(`${option} ${path}: cannot read it (${(e as Error).message})`);
  }
}

/**
 * Check a plan against the machines a command will build, before any run:
 * every point it names on each machine (unless the rule is optional) and the
 * actions each point takes; an optional rule's point must still exist on
 * one of them (a misspelt name is not silently skipped everywhere).
 */
export function checkPlanOn(option: string, plan: FaultPlan, kinds: readonly MachineKind[], s: Scenario | undefined, params: Record<string, string>): void {
  const seen = new Set<string>();
  for (const kind of kinds) {
    const m = machineFor(kind, 1, params, s);
    try {
      applyPlan(m, plan).disarm();
    } catch (e) {
      if (e instanceof PlanError) throw new UsageError(`${option}: on ${kind}: ${e.errors.join('; ')}`);
      throw e;
    }
    for (const p of m.board.faults.all()) seen.add(p.name);
  }
  plan.rules.forEach((r, i) => {
    if (!seen.has(r.point)) throw new UsageError(`${option}: rules[${i}].point: no machine of this run (${kinds.join(', ')}) has a point "${r.point}"`);
  });
}

/** The stack frames of the exception that ended a run, indented under its FAILED line. */
export function thrownLines(r: RunResult): string[] {
  if (r.thrown === undefined) return [];
  const e = r.thrown.error;
  if (!(e instanceof Error) || e.stack === undefined) return [];
  return e.stack.split('\n').filter((l) => /^\s+at /.test(l)).map((l) => `    ${l.trim()}`);
}

/** The human summary printed after a run. */
export function summarize(r: RunResult): string[] {
  const out: string[] = [];
  const iopf = iopfStats(r);
  const pri = stats(r.priServiceNs);
  const desc = stats(descriptorLatencies(r.trace.events));
  out.push(`summary: ${r.scenario} on ${r.machine}, seed ${r.seed}: ${r.ok ? 'PASSED' : 'FAILED'}; virtual time ${fmtNs(r.virtualNs)}, ${r.trace.events.length} trace events`);
  out.push(
    `  page faults (PRI): ${r.counters['iopf.requests'] ?? 0} page requests, ${iopf.count} groups answered by the host` +
      (pri.count ? `; service time at the device mean ${fmtNs(pri.mean)}, p50 ${fmtNs(pri.p50)}, p99 ${fmtNs(pri.p99)}, max ${fmtNs(pri.max)}` : '') +
      (iopf.count ? ` (host handling mean ${fmtNs(iopf.mean)})` : ''),
  );
  out.push(`  descriptors: ${desc.count}` + (desc.count ? `; latency mean ${fmtNs(desc.mean)}, p50 ${fmtNs(desc.p50)}, max ${fmtNs(desc.max)}` : ''));
  const rates = hitRates(r.counters);
  if (rates.length) out.push(`  caches: ${rates.map((h) => `${h.cache} ${(h.rate * 100).toFixed(0)}% (${h.hits}/${h.hits + h.misses})`).join(', ')}`);
  for (const p of r.plans) {
    for (const s of p.rules) {
      out.push(`  fault plan: ${s.rule.point} -> ${s.rule.action.kind}: ` + (s.absent ? `not on ${r.machine} (optional rule, skipped)` : `${s.matched} matching hit(s), ${s.injected} injected`));
    }
  }
  for (const f of r.failures) out.push(`  FAILED: ${f}`);
  out.push(...thrownLines(r));
  if (r.violations.length) out.push(`  invariants broken:\n${formatViolations(r.violations)}`);
  return out;
}

/** The exit status of finished runs: 3 if ioemu itself threw in one, else 1 if one failed, else 0. */
export function runsStatus(runs: readonly RunResult[]): number {
  if (runs.some((r) => r.thrown?.insideIoemu)) return EXIT.INTERNAL;
  return runs.every((r) => r.ok) ? EXIT.OK : EXIT.FAILED;
}

/** The line for stderr when ioemu itself threw during a run (exit 3). */
export function internalErrorLines(runs: readonly RunResult[]): string {
  const r = runs.find((x) => x.thrown?.insideIoemu);
  if (r === undefined) return '';
  const e = r.thrown!.error;
  return `ioemu: internal error during ${r.scenario} on ${r.machine} (a fault inside ioemu: please report it with the command line):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
}
