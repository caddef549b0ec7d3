/** `ioemu run <scenario>`: one scenario on one machine or each machine in turn, a summary, a trace and a report. */
import type { FaultPlan } from '../../src/fault/plan.ts';
import { MACHINE_PARAMS, describeRange, SEED_PARAM, parseParam } from '../../tools/scenario/params.ts';
import { checkParams, runScenario, UsageError } from '../../tools/scenario/scenario.ts';
import { comparisonTable } from '../../tools/scenario/several.ts';
import { intOption, machinesOption, parseArgs, value } from '../args.ts';
import { loadScenario } from '../load.ts';
import { checkWritable, writeRunOutputs, type RunOutput } from '../outputs.ts';
import { checkPlanOn, EXIT, internalErrorLines, readPlanOption, runsStatus, summarize, thrownLines, type Io } from './common.ts';

/** The machine parameters as the help lists them, from the one schema. */
export function machineParamLines(indent: string): string {
  return Object.entries(MACHINE_PARAMS)
    .map(([k, p]) => `${indent}${k.padEnd(15)} ${describeRange(p)}, default ${p.default}: ${p.description}`)
    .join('\n');
}

export const RUN_HELP = `Usage: ioemu run <scenario> [options]

Runs <scenario> on a fresh machine, prints what happened and a summary
(counts, virtual-time latencies, cache hit rates), then checks the machine's
invariants (page accounting, translations, groups, SVA bonds).

Options:
  --machine M        virt-smmuv3, q35-vtd, or all (each machine in turn: one
                     trace file with a process per machine, one report)
                     (default: the scenario's, else q35-vtd)
  --seed N           the machine's PRNG seed, ${describeRange(SEED_PARAM)} (default 1);
                     same seed, same trace (also --param seed=N)
  --trace FILE       write the Chrome trace-event JSON (open in https://ui.perfetto.dev)
  --inject PLAN      arm a fault plan (JSON, docs/fault-plans.md) before the scenario starts
  --report FILE      write a self-contained HTML report with plots
  --param NAME=V     set a parameter (repeatable): the scenario's own ("ioemu list")
                     or one of the machine's:
${machineParamLines('                       ')}
  --trace-config-reads
                     trace every configuration-space read as its own event
                     (default: a counter per function, <bdf>.config.reads)
  --quiet            print only the summary line
  -h, --help         this text

Everything given is checked before the run starts: a bad option, parameter,
plan or output path is exit status 2.

Examples:
  ioemu run default
  ioemu run default --machine virt-smmuv3 --trace t.json --report r.html
  ioemu run default --machine all --trace t.json --report r.html   (npm start)
  ioemu run default --inject my-plan.json --seed 7
`;

/** `--param NAME=VALUE` options as a record (a name given twice: the last value). */
export function paramPairs(list: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const p of list) {
    const k = p.indexOf('=');
    if (k <= 0) throw new UsageError(`--param ${p}: must be NAME=VALUE`);
    params[p.slice(0, k)] = p.slice(k + 1);
  }
  return params;
}

/** The run's seed, from --seed or --param seed=N (not both). */
export function seedOf(option: string | undefined, param: string | undefined): number | undefined {
  if (option !== undefined && param !== undefined) throw new UsageError('--seed and --param seed=... both give the seed: use one');
  if (option !== undefined) return intOption('--seed', option, 0, 0xffffffff);
  return param === undefined ? undefined : parseParam('seed', SEED_PARAM, param);
}

export async function cmdRun(args: string[], io: Io): Promise<number> {
  const o = parseArgs(args, { values: ['--machine', '--seed', '--trace', '--inject', '--report', '--param'], flags: ['--quiet', '--trace-config-reads'], repeatable: ['--param'] });
  if (o.flags.has('--help')) return io.out(RUN_HELP), EXIT.OK;
  if (o.positional.length !== 1) {
    throw new UsageError(o.positional.length === 0 ? 'run needs a scenario (see "ioemu run --help")' : `run takes one scenario; unexpected argument "${o.positional[1]}"`);
  }
  const quiet = o.flags.has('--quiet');
  const machineArg = value(o, '--machine');
  const machines = machineArg === undefined ? [undefined] : machinesOption('--machine', machineArg);
  const params = paramPairs(o.values.get('--param') ?? []);
  const seed = seedOf(value(o, '--seed'), params.seed);
  delete params.seed;
  const trace = value(o, '--trace');
  const report = value(o, '--report');
  if (trace !== undefined) checkWritable('--trace', trace);
  if (report !== undefined) checkWritable('--report', report);
  const injectPath = value(o, '--inject');
  const plan: FaultPlan | undefined = injectPath === undefined ? undefined : readPlanOption('--inject', injectPath);
  const s = await loadScenario(o.positional[0]!);
  checkParams(s, params);
  const kinds = machines.map((m) => m ?? s.machine ?? 'q35-vtd');
  if (plan !== undefined) checkPlanOn('--inject', plan, kinds, s, params);

  const runs: RunOutput[] = [];
  for (const machine of machines) {
    if (runs.length > 0 && !quiet) io.out('\n');
    const narrative: string[] = [];
    const r = await runScenario(s, {
      ...(machine ? { machine } : {}),
      ...(seed !== undefined ? { seed } : {}),
      ...(plan ? { plan } : {}),
      params,
      traceConfigReads: o.flags.has('--trace-config-reads'),
      say: (line) => {
        narrative.push(line);
        if (!quiet) io.out(line + '\n');
      },
    });
    const lines = summarize(r);
    if (!quiet) io.out('\n');
    io.out((quiet ? lines.slice(0, 1) : lines).join('\n') + '\n');
    // Quiet or not, an exception that ended the run is shown with its stack.
    if (quiet && r.thrown !== undefined) io.err(r.failures.map((f) => `  FAILED: ${f}\n`).join('') + thrownLines(r).join('\n') + '\n');
    runs.push({ result: r, narrative });
  }
  const results = runs.map((x) => x.result);
  if (results.length > 1 && !quiet) io.out('\n' + comparisonTable(results).join('\n') + '\n');
  writeRunOutputs(runs, { trace, report }, quiet ? undefined : (line) => io.out(line + '\n'));
  io.err(internalErrorLines(results));
  return runsStatus(results);
}
