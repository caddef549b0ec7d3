/** `ioemu sweep <scenario>`: the scenario once per combination of parameter values (seeds included), one CSV row per run. */
import { writeFileSync } from 'node:fs';
import type { FaultPlan } from '../../src/fault/plan.ts';
import { fmtNs, renderReports } from '../../tools/report/html.ts';
import { summaryRow } from '../../tools/report/figures.ts';
import { paramSchema, SEED_PARAM, sweepValues, type ParamSpec } from '../../tools/scenario/params.ts';
import { checkParams, runScenario, UsageError, type RunResult } from '../../tools/scenario/scenario.ts';
import { intOption, machinesOption, parseArgs, value } from '../args.ts';
import { loadScenario } from '../load.ts';
import { checkWritable } from '../outputs.ts';
import { checkPlanOn, EXIT, internalErrorLines, readPlanOption, runsStatus, thrownLines, type Io } from './common.ts';

export const SWEEP_HELP = `Usage: ioemu sweep <scenario> --param NAME=V1,V2,... [options]

Runs <scenario> once per value (once per combination when --param is given
more than once) and writes one CSV row per run: the parameters, machine,
seed, ok, virtual time, PRI service time at the device and the host's
page-fault handling time (count, mean, p50, p99), descriptor latency, ATC and
IOTLB hit rates, then the scenario's own figures. Progress goes to stderr,
one line per run. Every value is checked before the first run.

Options:
  --param NAME=V1,V2,...   values to sweep (repeatable); a value may be an
                           integer range A..B (--param atc-entries=2,8,60..64);
                           "seed" sweeps the machine seed (--param seed=1..100);
                           see "ioemu list" for the names and their ranges
  --machine M              virt-smmuv3, q35-vtd, or all (every value on each machine)
  --seed N                 the machine seed of every run (default 1)
  --inject PLAN            arm a fault plan in every run
  --out FILE               write the CSV there (default: stdout)
  --report FILE            also write an HTML report comparing the runs
  -h, --help               this text

Examples:
  ioemu sweep default --param atc-entries=2,8,64 --param pri-capacity=4,64 --out sweep.csv
  ioemu sweep default --param seed=1..100 --machine all --out seeds.csv
`;

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function cmdSweep(args: string[], io: Io): Promise<number> {
  const o = parseArgs(args, { values: ['--machine', '--seed', '--inject', '--out', '--param', '--report'], repeatable: ['--param'] });
  if (o.flags.has('--help')) return io.out(SWEEP_HELP), EXIT.OK;
  if (o.positional.length !== 1) {
    throw new UsageError(o.positional.length === 0 ? 'sweep needs a scenario (see "ioemu sweep --help")' : `sweep takes one scenario; unexpected argument "${o.positional[1]}"`);
  }
  const axesArg = o.values.get('--param') ?? [];
  if (axesArg.length === 0) throw new UsageError('sweep needs at least one --param NAME=V1,V2,...');
  const machineArg = value(o, '--machine');
  const machines = machineArg === undefined ? [undefined] : machinesOption('--machine', machineArg);
  const seedArg = value(o, '--seed');
  const fixedSeed = seedArg === undefined ? undefined : intOption('--seed', seedArg, 0, 0xffffffff);
  const out = value(o, '--out');
  if (out !== undefined) checkWritable('--out', out);
  const report = value(o, '--report');
  if (report !== undefined) checkWritable('--report', report);
  const injectPath = value(o, '--inject');
  const plan: FaultPlan | undefined = injectPath === undefined ? undefined : readPlanOption('--inject', injectPath);
  const s = await loadScenario(o.positional[0]!);

  const schema: Record<string, ParamSpec> = { ...paramSchema(s.params), seed: SEED_PARAM };
  const axes: [string, string[]][] = [];
  for (const a of axesArg) {
    const k = a.indexOf('=');
    if (k <= 0) throw new UsageError(`--param ${a}: must be NAME=V1,V2,...`);
    const name = a.slice(0, k);
    const spec = schema[name];
    if (spec === undefined) throw new UsageError(`unknown parameter "${name}" for scenario ${s.name} (known: ${Object.keys(schema).join(', ')})`);
    if (axes.some(([n]) => n === name)) throw new UsageError(`--param ${name} is given twice: list its values in one --param`);
    axes.push([name, sweepValues(name, spec, a.slice(k + 1))]);
  }
  if (fixedSeed !== undefined && axes.some(([n]) => n === 'seed')) throw new UsageError('--seed and --param seed=... both give the seed: use one');
  let combos: Record<string, string>[] = [{}];
  for (const [k, vs] of axes) combos = combos.flatMap((c) => vs.map((v) => ({ ...c, [k]: v })));
  const scenarioParams = (c: Record<string, string>) => Object.fromEntries(Object.entries(c).filter(([k]) => k !== 'seed'));
  for (const c of combos) checkParams(s, scenarioParams(c));
  if (plan !== undefined) {
    const kinds = machines.map((m) => m ?? s.machine ?? 'q35-vtd');
    // Parameters size caches and queues; they add no points, so one combination shows every machine's points.
    checkPlanOn('--inject', plan, kinds, s, scenarioParams(combos[0]!));
  }

  const rows: Record<string, string | number>[] = [];
  const metricNames = new Set<string>();
  const results: RunResult[] = [];
  const total = combos.length * machines.length;
  for (const combo of combos) for (const machine of machines) {
    const label = Object.entries(combo).map(([k, v]) => `${k}=${v}`).join(' ') + (machines.length > 1 ? ` on ${machine}` : '');
    const t0 = Date.now();
    const seed = combo.seed !== undefined ? Number(combo.seed) : fixedSeed;
    const r = await runScenario(s, { ...(machine ? { machine } : {}), ...(seed !== undefined ? { seed } : {}), ...(plan ? { plan } : {}), params: scenarioParams(combo) });
    results.push(r);
    io.err(`[${results.length}/${total}] ${label}: ${r.ok ? 'ok' : 'FAILED'} (virtual ${fmtNs(r.virtualNs)}, ${Date.now() - t0} ms)\n`);
    if (r.thrown !== undefined) io.err(`  ${r.failures[r.failures.length - 1]}\n${thrownLines(r).join('\n')}\n`);
    for (const k of Object.keys(r.metrics)) metricNames.add(k);
    rows.push({ ...combo, ...summaryRow(r), ...r.metrics });
  }
  const names = axes.map(([k]) => k);
  const head = [...names, ...Object.keys(rows[0]!).filter((k) => !names.includes(k) && !metricNames.has(k)), ...[...metricNames].sort()];
  const csv = [head.map(csvCell).join(','), ...rows.map((r) => head.map((k) => csvCell(r[k] ?? '')).join(','))].join('\n') + '\n';
  if (out !== undefined) {
    writeFileSync(out, csv);
    io.err(`wrote ${rows.length} row(s) to ${out}\n`);
  } else io.out(csv);
  if (report !== undefined) {
    writeFileSync(report, renderReports(results.map((result) => ({ result, narrative: [] })), { title: `${s.name}, sweep of ${names.join(' and ')}` }));
    io.err(`report: ${report} (open it in a browser)\n`);
  }
  io.err(internalErrorLines(results));
  return runsStatus(results);
}
