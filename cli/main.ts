/**
 * The `ioemu` command line. `main(argv, io)` returns the exit status, so
 * tests run it in-process; bin/ioemu calls it with process.argv.
 * Exit status: 0 ok; 1 the scenario failed or an invariant broke; 2 usage
 * error (bad option, unknown scenario, bad plan or parameter); 3 internal error.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { PlanError, type FaultPlan } from '../src/fault/plan.ts';
import { formatViolations } from '../tools/fault/invariants.ts';
import { readPlanFile } from './fault-plan-file.ts';
import { fmtNs, renderReports } from '../tools/report/html.ts';
import { writeRunOutputs } from './outputs.ts';
import { cmdCc, CC_HELP } from './cc.ts';
import { cmdExec, EXEC_HELP } from './exec.ts';
import { hitRates, stats, descriptorLatencies, summaryRow } from '../tools/report/figures.ts';
import { loadScenario, SCENARIO_DIR } from './load.ts';
import { MACHINE_KINDS, MACHINE_PARAMS, machineFor, runScenario, UsageError, type RunResult } from '../tools/scenario/scenario.ts';
import { comparisonTable } from '../tools/scenario/several.ts';
import type { MachineKind } from '../machines/layout.ts';

export interface Io {
  out(s: string): void;
  err(s: string): void;
}

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, INTERNAL: 3 } as const;

const MAIN_HELP = `ioemu: run emulated PCIe/IOMMU scenarios and look at what happened.

Usage:
  ioemu run <scenario> [options]      run one scenario, print a summary
  ioemu sweep <scenario> --param name=v1,v2,... [options]
                                      run it once per value, write a CSV
  ioemu list                          list the scenarios in scenarios/ and the parameters
  ioemu points [--scenario FILE]      list the fault-injection points (for --inject plans)
  ioemu cc [clang options] -o prog.wasm prog.c
                                      compile a C program to run on ioemu
  ioemu exec [options] prog.wasm [args...]
                                      run it as a process of a machine
  ioemu help [command]                this text, or a command's

A <scenario> is a name in scenarios/ (e.g. "default"), or a path to a .ts
module (default export { name, description, run(ctx) }) or a .json file
(a list of steps; see tools/scenario/json-scenario.ts).

Exit status: 0 ok, 1 scenario failed or an invariant broke, 2 usage error,
3 internal error (a bug: please report it with the command line). ioemu exec
exits with the program's own status (3 when ioemu itself failed).
`;

const RUN_HELP = `Usage: ioemu run <scenario> [options]

Runs <scenario> on a fresh machine, prints what happened and a summary
(counts, virtual-time latencies, cache hit rates), then checks the machine's
invariants (page accounting, translations, groups, SVA bonds).

Options:
  --machine M        virt-smmuv3, q35-vtd, or all (each machine in turn: one
                     trace file with a process per machine, one report)
                     (default: the scenario's, else q35-vtd)
  --seed N           the machine's PRNG seed (default 1); same seed, same trace
  --trace FILE       write the Chrome trace-event JSON (open in https://ui.perfetto.dev)
  --inject PLAN      arm a fault plan (JSON, see src/fault/plan.ts) before the scenario starts
  --report FILE      write a self-contained HTML report with plots
  --param NAME=V     set a parameter (repeatable); see "ioemu list"
  --trace-config-reads
                     trace every configuration-space read as its own event
                     (default: a counter per function, <bdf>.config.reads)
  --quiet            print only the summary line
  -h, --help         this text

Examples:
  ioemu run default
  ioemu run default --machine virt-smmuv3 --trace t.json --report r.html
  ioemu run default --machine all --trace t.json --report r.html   (npm start)
  ioemu run default --inject my-plan.json --seed 7
`;

const SWEEP_HELP = `Usage: ioemu sweep <scenario> --param NAME=V1,V2,... [options]

Runs <scenario> once per value (once per combination when --param is given
more than once) and writes one CSV row per run: the parameters, machine,
seed, ok, virtual time, page-fault service time (count, mean, p50, p99),
descriptor latency, ATC and IOTLB hit rates, then the scenario's own figures.
Progress goes to stderr, one line per run.

Options:
  --param NAME=V1,V2,...   values to sweep (repeatable); see "ioemu list"
  --machine M              virt-smmuv3, q35-vtd, or all (every value on each machine)
  --seed N                 the machine seed of every run (default 1)
  --inject PLAN            arm a fault plan in every run
  --out FILE               write the CSV there (default: stdout)
  --report FILE            also write an HTML report comparing the runs
  -h, --help               this text

Example:
  ioemu sweep default --param atc-entries=2,8,64 --param pri-capacity=4,64 --out sweep.csv
`;

interface Opts {
  positional: string[];
  machines?: MachineKind[];
  seed?: number;
  trace?: string;
  inject?: string;
  report?: string;
  out?: string;
  scenario?: string;
  params: [string, string][];
  quiet: boolean;
  help: boolean;
  traceConfigReads: boolean;
}

const VALUE_OPTS = new Set(['--machine', '--seed', '--trace', '--inject', '--report', '--out', '--param', '--scenario']);

function parseArgs(args: string[], allowed: readonly string[]): Opts {
  const o: Opts = { positional: [], params: [], quiet: false, help: false, traceConfigReads: false };
  for (let i = 0; i < args.length; i++) {
    let a = args[i]!;
    let v: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (a === '-h' || a === '--help') o.help = true;
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--trace-config-reads' && allowed.includes(a)) o.traceConfigReads = true;
    else if (VALUE_OPTS.has(a)) {
      if (!allowed.includes(a)) throw new UsageError(`option ${a} is not valid here`);
      if (v === undefined) {
        v = args[++i];
        if (v === undefined) throw new UsageError(`option ${a} needs a value`);
      }
      switch (a) {
        case '--machine':
          if (v === 'all') o.machines = [...MACHINE_KINDS];
          else if (MACHINE_KINDS.includes(v as MachineKind)) o.machines = [v as MachineKind];
          else throw new UsageError(`--machine: "${v}" is not a machine (use ${MACHINE_KINDS.join(', ')} or all)`);
          break;
        case '--seed': {
          const n = Number(v);
          if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new UsageError(`--seed: "${v}" is not an integer in [0, 2^32)`);
          o.seed = n;
          break;
        }
        case '--param': {
          const k = v.indexOf('=');
          if (k <= 0) throw new UsageError(`--param: "${v}" is not NAME=VALUE`);
          o.params.push([v.slice(0, k), v.slice(k + 1)]);
          break;
        }
        default:
          o[a.slice(2) as 'trace' | 'inject' | 'report' | 'out' | 'scenario'] = v;
      }
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else o.positional.push(a);
  }
  return o;
}

function readPlan(path: string | undefined): FaultPlan | undefined {
  if (path === undefined) return undefined;
  try {
    return readPlanFile(path);
  } catch (e) {
    if (e instanceof PlanError) throw new UsageError(e.message);
    throw new UsageError(`--inject: cannot read ${path} (${(e as Error).message})`);
  }
}

/** The human summary printed after a run. */
export function summarize(r: RunResult): string[] {
  const out: string[] = [];
  const iopf = stats(r.iopfLatencies);
  const desc = stats(descriptorLatencies(r.trace.events));
  out.push(`summary: ${r.scenario} on ${r.machine}, seed ${r.seed}: ${r.ok ? 'PASSED' : 'FAILED'}; virtual time ${fmtNs(r.virtualNs)}, ${r.trace.events.length} trace events`);
  out.push(`  page faults (PRI): ${r.counters['iopf.requests'] ?? 0} page requests, ${iopf.count} groups answered` +
    (iopf.count ? `; service time mean ${fmtNs(iopf.mean)}, p50 ${fmtNs(iopf.p50)}, p99 ${fmtNs(iopf.p99)}, max ${fmtNs(iopf.max)}` : ''));
  out.push(`  descriptors: ${desc.count}` + (desc.count ? `; latency mean ${fmtNs(desc.mean)}, p50 ${fmtNs(desc.p50)}, max ${fmtNs(desc.max)}` : ''));
  const rates = hitRates(r.counters);
  if (rates.length) out.push(`  caches: ${rates.map((h) => `${h.cache} ${(h.rate * 100).toFixed(0)}% (${h.hits}/${h.hits + h.misses})`).join(', ')}`);
  for (const p of r.plans) for (const s of p.rules) out.push(`  fault plan: ${s.rule.point} -> ${s.rule.action.kind}: ${s.matched} matching hit(s), ${s.injected} injected`);
  for (const f of r.failures) out.push(`  FAILED: ${f}`);
  if (r.violations.length) out.push(`  invariants broken:\n${formatViolations(r.violations)}`);
  return out;
}

async function cmdRun(args: string[], io: Io): Promise<number> {
  const o = parseArgs(args, ['--machine', '--seed', '--trace', '--inject', '--report', '--param', '--trace-config-reads']);
  if (o.help) return io.out(RUN_HELP), EXIT.OK;
  if (o.positional.length !== 1) throw new UsageError('run needs exactly one scenario (see "ioemu run --help")');
  const plan = readPlan(o.inject);
  const s = await loadScenario(o.positional[0]!);
  const runs: { result: RunResult; narrative: string[] }[] = [];
  for (const machine of o.machines ?? [undefined]) {
    if (runs.length > 0 && !o.quiet) io.out('\n');
    const narrative: string[] = [];
    const r = await runScenario(s, {
      ...(machine ? { machine } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...(plan ? { plan } : {}),
      params: Object.fromEntries(o.params),
      traceConfigReads: o.traceConfigReads,
      say: (line) => {
        narrative.push(line);
        if (!o.quiet) io.out(line + '\n');
      },
    });
    const lines = summarize(r);
    if (!o.quiet) io.out('\n');
    io.out((o.quiet ? lines.slice(0, 1) : lines).join('\n') + '\n');
    runs.push({ result: r, narrative });
  }
  const results = runs.map((x) => x.result);
  if (results.length > 1 && !o.quiet) io.out('\n' + comparisonTable(results).join('\n') + '\n');
  writeRunOutputs(runs, o, o.quiet ? undefined : (line) => io.out(line + '\n'));
  return results.every((r) => r.ok) ? EXIT.OK : EXIT.FAILED;
}

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

async function cmdSweep(args: string[], io: Io): Promise<number> {
  const o = parseArgs(args, ['--machine', '--seed', '--inject', '--out', '--param', '--report']);
  if (o.help) return io.out(SWEEP_HELP), EXIT.OK;
  if (o.positional.length !== 1) throw new UsageError('sweep needs exactly one scenario (see "ioemu sweep --help")');
  if (o.params.length === 0) throw new UsageError('sweep needs at least one --param NAME=V1,V2,...');
  const plan = readPlan(o.inject);
  const s = await loadScenario(o.positional[0]!);
  const axes = o.params.map(([k, v]) => [k, v.split(',').map((x) => x.trim()).filter((x) => x !== '')] as const);
  for (const [k, vs] of axes) if (vs.length === 0) throw new UsageError(`--param ${k}: no values`);
  let combos: Record<string, string>[] = [{}];
  for (const [k, vs] of axes) combos = combos.flatMap((c) => vs.map((v) => ({ ...c, [k]: v })));
  const rows: Record<string, string | number>[] = [];
  const kept: RunResult[] = [];
  const metricNames = new Set<string>();
  let failed = 0;
  const machines = o.machines ?? [undefined];
  const total = combos.length * machines.length;
  let i = 0;
  for (const params of combos) for (const machine of machines) {
    const label = Object.entries(params).map(([k, v]) => `${k}=${v}`).join(' ') + (machines.length > 1 ? ` on ${machine}` : '');
    const t0 = Date.now();
    const r = await runScenario(s, { ...(machine ? { machine } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(plan ? { plan } : {}), params });
    if (!r.ok) failed++;
    io.err(`[${++i}/${total}] ${label}: ${r.ok ? 'ok' : 'FAILED'} (virtual ${fmtNs(r.virtualNs)}, ${Date.now() - t0} ms)\n`);
    for (const k of Object.keys(r.metrics)) metricNames.add(k);
    rows.push({ ...params, ...summaryRow(r), ...r.metrics });
    if (o.report !== undefined) kept.push(r);
  }
  const head = [...axes.map(([k]) => k), ...Object.keys(rows[0]!).filter((k) => !axes.some(([a]) => a === k) && !metricNames.has(k)), ...[...metricNames].sort()];
  const csv = [head.map(csvCell).join(','), ...rows.map((r) => head.map((k) => csvCell(r[k] ?? '')).join(','))].join('\n') + '\n';
  if (o.out !== undefined) {
    writeFileSync(o.out, csv);
    io.err(`wrote ${rows.length} row(s) to ${o.out}\n`);
  } else io.out(csv);
  if (o.report !== undefined) {
    writeFileSync(o.report, renderReports(kept.map((result) => ({ result, narrative: [] })), { title: `${s.name}, sweep of ${axes.map(([k]) => k).join(' and ')}` }));
    io.err(`report: ${o.report} (open it in a browser)\n`);
  }
  return failed > 0 ? EXIT.FAILED : EXIT.OK;
}

async function cmdList(io: Io): Promise<number> {
  io.out(`Scenarios in ${SCENARIO_DIR}:\n`);
  for (const f of readdirSync(SCENARIO_DIR).filter((f) => /\.(ts|json)$/.test(f)).sort()) {
    try {
      const s = await loadScenario(`${SCENARIO_DIR}/${f}`);
      io.out(`  ${f.replace(/\.(ts|json)$/, '').padEnd(20)} ${s.description}\n`);
      for (const [k, p] of Object.entries(s.params ?? {})) io.out(`      --param ${k}=N  ${p.description}${p.default ? ` (default ${p.default})` : ''}\n`);
    } catch (e) {
      io.out(`  ${f.padEnd(20)} (cannot load: ${(e as Error).message})\n`);
    }
  }
  io.out('\nParameters every scenario accepts (they configure the machine):\n');
  for (const [k, p] of Object.entries(MACHINE_PARAMS)) io.out(`  --param ${k}=N  ${p.description} (default ${p.default})\n`);
  return EXIT.OK;
}

const POINTS_HELP = `Usage: ioemu points [--scenario FILE] [--machine M]

Lists the fault-injection points a plan may name: those the machine's parts
define as they are built (the IOMMU, the host kernel, VFIO, iommufd and each
device, a scenario's own devices included), with the actions each supports
and which machines have it.

Options:
  --scenario FILE  the machine of this scenario (its topology and devices)
  --machine M      virt-smmuv3, q35-vtd, or all (default all)
`;

/** Every injection point a plan may name on the chosen machines, with what injecting there does. */
async function cmdPoints(args: string[], io: Io): Promise<number> {
  const o = parseArgs(args, ['--machine', '--scenario']);
  if (o.help) return io.out(POINTS_HELP), EXIT.OK;
  if (o.positional.length > 0) throw new UsageError(`points takes no arguments (got "${o.positional[0]}"); see "ioemu help points"`);
  const s = o.scenario === undefined ? undefined : await loadScenario(o.scenario);
  const kinds = o.machines ?? [...MACHINE_KINDS];
  const seen = new Map<string, { description: string; actions: readonly string[]; kinds: MachineKind[] }>();
  for (const kind of kinds) {
    for (const p of machineFor(kind, 1, {}, s).board.faults.all()) {
      const e = seen.get(p.name) ?? { description: p.description, actions: p.actions, kinds: [] };
      e.kinds.push(kind);
      seen.set(p.name, e);
    }
  }
  const names = [...seen.keys()].sort();
  io.out(`${names.length} injection points${s ? ` of scenario ${s.name}` : ''} on ${kinds.join(' and ')}; a plan rule names one in "point":\n`);
  const w = Math.max(...names.map((n) => n.length));
  for (const n of names) {
    const e = seen.get(n)!;
    const where = e.kinds.length === kinds.length ? '' : ` [${e.kinds.join(', ')} only]`;
    io.out(`  ${n.padEnd(w)}  ${e.description} (actions: ${e.actions.join(', ')})${where}\n`);
  }
  return EXIT.OK;
}

export async function main(argv: string[], io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest, io);
      case 'sweep':
        return await cmdSweep(rest, io);
      case 'list':
        return await cmdList(io);
      case 'points':
        return await cmdPoints(rest, io);
      case 'cc':
        return await cmdCc(rest, io);
      case 'exec':
        return await cmdExec(rest, io);
      case undefined:
      case 'help':
      case '-h':
      case '--help': {
        const topic = rest[0];
        const topics: Record<string, string> = { run: RUN_HELP, sweep: SWEEP_HELP, points: POINTS_HELP, cc: CC_HELP, exec: EXEC_HELP };
        io.out(topics[topic ?? ''] ?? MAIN_HELP);
        return EXIT.OK;
      }
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`ioemu: ${e.message}\nTry "ioemu help${cmd === 'run' || cmd === 'sweep' || cmd === 'cc' || cmd === 'exec' ? ` ${cmd}` : ''}".\n`);
      return EXIT.USAGE;
    }
    io.err(`ioemu: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.INTERNAL;
  }
}
