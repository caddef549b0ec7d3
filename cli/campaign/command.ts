/**
 * `ioemu campaign`: fault campaigns from the one CLI (`npm run campaign --`
 * is an alias). A campaign is data (tools/campaign/campaign.ts): its runs in
 * a fixed order, split into shards the way test runners do it; the runs go
 * to worker threads (runner.ts), each result becomes a JSON Lines record as
 * it finishes (records.ts), and the summary is the same whether the runs
 * ran in one process or in shards merged afterwards.
 */
import { availableParallelism } from 'node:os';
import { CAMPAIGN_MODES, CAMPAIGN_RUN, campaignRuns, parseShard, runCampaignInput, shardRuns, type CampaignMode, type CampaignSpec, type RunInput, type Shard } from '../../tools/campaign/campaign.ts';
import { collectFigures, formatFigures } from '../../tools/campaign/figures.ts';
import { formatSummary, isFailure, tally } from '../../tools/campaign/summary.ts';
import { ALL_ACTIONS, type InjectionActionKind } from '../../src/fault/injector.ts';
import { machinePoints } from '../../tools/campaign/scenarios.ts';
import { UsageError } from '../../tools/scenario/scenario.ts';
import { durationOption, fmtDuration, intListOption, intOption, machinesOption, parseArgs, value, type ParsedArgs } from '../args.ts';
import { checkPlanOn, EXIT, readPlanOption, type Io } from '../commands/common.ts';
import { checkWritable } from '../outputs.ts';
import { Progress } from './progress.ts';
import { hasResults, readResults, resultOf, ResultsWriter, runRecord, type CampaignHeader, type RunRecord } from './records.ts';
import { runCampaign } from './runner.ts';

const DEFAULT_WALL_NS = 60e9;

export const CAMPAIGN_HELP = `Usage: ioemu campaign <mode> [options]
       ioemu campaign merge FILE...
       ioemu campaign replay FILE ID
       ioemu campaign figures

Runs many fault-injection runs in worker threads and summarises how they
ended (survived, errored, permitted, broken, exception, timeout), per
injection point, with every failure's input to replay it.

Modes:
  sweep     the 1st..3rd hit of every point a fixed operation touching every
            front end reaches on each machine, with each action the point takes
  random    a random plan per seed (1 to 3 rules: a point of the machine, an
            action it takes, a probability) on the fixed operation
  model     a seeded model-based command sequence per seed, checked against
            a reference model
  plan      one plan (--plan FILE) on the fixed operation, once per seed
  merge     read the JSON Lines of a campaign's shards and print the summary
            the unsharded campaign prints
  replay    run one recorded run again in this process (FILE, its id)
  figures   the fault-injection figures: points, fail-nth steps per ioctl,
            model sequences, fuzz cases (IOEMU_FIGURES_SCALE scales them)

Options:
  --machine M            virt-smmuv3, q35-vtd or all (default all)
  --seeds N              random, model, plan: seeds per machine, 1..1000000
                         (default 100; plan: 1)
  --seed-start S         the first seed, 0..4294967295 (default 1)
  --plan FILE            plan: the fault plan
  --points P,...         sweep: only these points
  --nth N,...            sweep: the hits to inject, 1..1000 (default 1,2,3)
  --actions A,...        sweep: fail, drop, delay, corrupt (default: each action
                         a point takes)
  --length N             model: commands per sequence, 1..1000 (default 1..20
                         drawn from the seed)
  --workers N            worker threads, 1..256 (default min(2, cores))
  --max-virtual-time T   a run that passes T of virtual time is a timeout
                         (e.g. 50ms; default no limit)
  --max-wall-time T      a run that takes longer than T is a timeout
                         (default ${fmtDuration(DEFAULT_WALL_NS)})
  --shard i/n            run only the i-th of n parts (1-based; run id k is in
                         part k % n + 1)
  --shards N             without --shard: run part JOB_COMPLETION_INDEX+1 of N
                         (Kubernetes Indexed Jobs set JOB_COMPLETION_INDEX)
  --out FILE             write JSON Lines: a header, then one record per run
                         (its full input and outcome) as it finishes; {shard}
                         in FILE becomes i-of-n (all without a shard)
  --resume               continue FILE: run only the runs it has no record of
  --progress-every T     without a terminal: a progress line every T (default 10s)
  --quiet                no progress display
  -h, --help             this text

Progress goes to stderr (a live bar on a terminal), the summary to stdout.
Exit status: 0 no run failed; 1 a run broke an invariant, threw or hung;
2 usage error (bad option, missing or mismatched results); 3 internal error.
A campaign stopped by SIGINT or SIGTERM keeps every finished run's record
and exits 130 or 143; run the same command with --resume to finish it.

Examples:
  ioemu campaign random --machine q35-vtd --seeds 500 --workers 4
  ioemu campaign sweep --shard 2/4 --out sweep-{shard}.jsonl
  ioemu campaign merge sweep-*.jsonl
`;

const RUN_OPTIONS = [
  '--machine', '--kind', '--seeds', '--seed-start', '--plan', '--points', '--nth', '--actions', '--length', '--workers',
  '--max-virtual-time', '--max-wall-time', '--shard', '--shards', '--out', '--progress-every',
];

/** The campaign a command line describes (validated), and how to run it. */
export interface Invocation {
  mode: CampaignMode;
  spec: CampaignSpec;
  shard: Shard | undefined;
  workers: number;
  out: string | undefined;
  resume: boolean;
  quiet: boolean;
  progressMs: number;
}

function actionList(v: string): InjectionActionKind[] {
  const items = v.split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const a of items) if (!ALL_ACTIONS.includes(a as InjectionActionKind)) throw new UsageError(`--actions ${v}: "${a}" is not an action (use ${ALL_ACTIONS.join(', ')})`);
  if (items.length === 0) throw new UsageError(`--actions ${v}: give one or more of ${ALL_ACTIONS.join(', ')}`);
  return items as InjectionActionKind[];
}

/** Options a mode does not use are refused rather than ignored. */
const MODE_OPTIONS: Record<CampaignMode, readonly string[]> = {
  sweep: ['--points', '--nth', '--actions'],
  random: ['--seeds', '--seed-start'],
  model: ['--seeds', '--seed-start', '--length'],
  plan: ['--seeds', '--seed-start', '--plan'],
};

function invocation(mode: CampaignMode, o: ParsedArgs, env: Readonly<Record<string, string | undefined>>): Invocation {
  for (const opt of ['--points', '--nth', '--actions', '--seeds', '--seed-start', '--length', '--plan']) {
    if (o.values.has(opt) && !MODE_OPTIONS[mode].includes(opt)) throw new UsageError(`${opt} does not apply to ${mode} (it applies to ${Object.entries(MODE_OPTIONS).filter(([, os]) => os.includes(opt)).map(([m]) => m).join(', ')})`);
  }
  if (o.positional.length > 0) throw new UsageError(`campaign ${mode} takes no arguments (got "${o.positional[0]}")`);
  if (o.values.has('--machine') && o.values.has('--kind')) throw new UsageError('--kind is the old name of --machine: give one');
  const kindArg = value(o, '--kind');
  const machineArg = value(o, '--machine') ?? (kindArg === 'both' ? 'all' : kindArg) ?? 'all';
  const machines = machinesOption(o.values.has('--kind') ? '--kind' : '--machine', machineArg);
  const seedsArg = value(o, '--seeds');
  const spec: CampaignSpec = {
    mode,
    machines,
    seedStart: intOption('--seed-start', value(o, '--seed-start') ?? '1', 0, 0xffffffff),
    seeds: mode === 'sweep' ? 0 : intOption('--seeds', seedsArg ?? (mode === 'plan' ? '1' : '100'), 1, 1_000_000),
    maxWallMs: durationOption('--max-wall-time', value(o, '--max-wall-time') ?? '60s', 1e6, 24 * 3600e9) / 1e6,
  };
  if (spec.seedStart + spec.seeds - 1 > 0xffffffff) throw new UsageError(`--seed-start ${spec.seedStart} with --seeds ${spec.seeds}: the last seed passes 4294967295`);
  const virt = value(o, '--max-virtual-time');
  if (virt !== undefined) spec.maxVirtualNs = durationOption('--max-virtual-time', virt, 1, 1e15);
  const points = value(o, '--points');
  if (points !== undefined) spec.points = points.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const nth = value(o, '--nth');
  if (nth !== undefined) spec.nth = intListOption('--nth', nth, 1, 1000);
  const actions = value(o, '--actions');
  if (actions !== undefined) spec.actions = actionList(actions);
  const length = value(o, '--length');
  if (length !== undefined) spec.length = intOption('--length', length, 1, 1000);
  const planPath = value(o, '--plan');
  if (mode === 'plan') {
    if (planPath === undefined) throw new UsageError('campaign plan needs --plan FILE');
    spec.plan = readPlanOption('--plan', planPath);
    checkPlanOn('--plan', spec.plan, machines, undefined, {});
  }
  if (spec.points !== undefined) {
    const known = new Set(machines.flatMap((k) => machinePoints(k)));
    for (const p of spec.points) if (!known.has(p)) throw new UsageError(`--points: no machine of this campaign (${machines.join(', ')}) has a point "${p}" (see "ioemu points")`);
  }

  const shardArg = value(o, '--shard');
  const shardsArg = value(o, '--shards');
  let shard: Shard | undefined;
  if (shardArg !== undefined) shard = parseShard(shardArg);
  else if (shardsArg !== undefined) {
    const count = intOption('--shards', shardsArg, 1, 100_000);
    const idx = env.JOB_COMPLETION_INDEX;
    if (idx === undefined) throw new UsageError('--shards N takes the part from JOB_COMPLETION_INDEX, which is not set (give --shard i/n instead)');
    const index = intOption('JOB_COMPLETION_INDEX', idx, 0, count - 1) + 1;
    shard = { index, count };
  }
  const outArg = value(o, '--out');
  const out = outArg?.replace(/\{shard\}/g, shard === undefined ? 'all' : `${shard.index}-of-${shard.count}`);
  const resume = o.flags.has('--resume');
  if (resume && out === undefined) throw new UsageError('--resume continues the file of --out: give --out FILE');
  const workers = intOption('--workers', value(o, '--workers') ?? String(Math.min(2, availableParallelism())), 1, 256);
  const progressMs = durationOption('--progress-every', value(o, '--progress-every') ?? '10s', 1e6, 24 * 3600e9) / 1e6;
  return { mode, spec, shard, workers, out, resume, quiet: o.flags.has('--quiet'), progressMs };
}

/**
 * The campaign a command line (`ioemu campaign <mode> [options]`) runs,
 * validated, without touching a file but the plan: the deploy/ test reads
 * its manifests' shard arguments through this.
 */
export function parseCampaign(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Invocation {
  const mode = argv[0];
  if (mode === undefined || !(CAMPAIGN_MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`campaign: unknown mode "${mode}" (modes: ${[...CAMPAIGN_MODES, 'merge', 'replay', 'figures'].join(', ')}; see "ioemu campaign --help")`);
  }
  return invocation(mode as CampaignMode, parseArgs(argv.slice(1), { values: RUN_OPTIONS, flags: ['--resume', '--quiet'] }), env);
}

/** The header a campaign's results file starts with. */
function headerOf(inv: Invocation, runs: number): CampaignHeader {
  return { type: 'campaign', format: 1, spec: inv.spec, runs, shard: inv.shard ?? null };
}

async function runMode(mode: CampaignMode, o: ParsedArgs, io: Io, env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const inv = invocation(mode, o, env);
  if (inv.out !== undefined) {
    checkWritable('--out', inv.out);
    if (!inv.resume && hasResults(inv.out)) throw new UsageError(`--out ${inv.out}: the file has results already (--resume continues them; remove the file to start over)`);
  }
  const all = campaignRuns(inv.spec);
  const mine = shardRuns(all, inv.shard);
  const header = headerOf(inv, all.length);
  const done: RunRecord[] = [];
  let writer: ResultsWriter | undefined;
  if (inv.out !== undefined) {
    if (inv.resume && hasResults(inv.out)) {
      const f = readResults(inv.out);
      if (JSON.stringify(f.header) !== JSON.stringify(header)) {
        throw new UsageError(`--resume: ${inv.out} holds another campaign or shard (its header differs from this command's: ${JSON.stringify(f.header)})`);
      }
      const seen = new Set<number>();
      for (const r of f.records) if (!seen.has(r.id)) (seen.add(r.id), done.push(r));
      writer = ResultsWriter.resume(inv.out, f);
    } else writer = ResultsWriter.create(inv.out, header);
  }
  const recorded = new Set(done.map((r) => r.id));
  const todo = mine.filter((j) => !recorded.has(j.id));
  const where = inv.shard === undefined ? '' : ` (shard ${inv.shard.index}/${inv.shard.count})`;
  io.err(`campaign ${mode}: ${mine.length} of ${all.length} runs${where}${done.length > 0 ? `, ${done.length} already recorded` : ''}, ${inv.workers} worker(s)\n`);

  const progress = inv.quiet ? undefined : new Progress(todo.length, { write: io.err, isTTY: io.errIsTTY ?? false, columns: io.columns ?? 80 }, `campaign ${mode}`, { intervalMs: inv.progressMs });
  const controller = new AbortController();
  let signal: NodeJS.Signals | undefined;
  const onSignal = (s: NodeJS.Signals) => {
    signal = s;
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const byId = new Map(todo.map((j) => [j.id, j.input]));
  let s;
  try {
    s = await runCampaign<RunInput>({
      scenario: CAMPAIGN_RUN,
      jobs: todo,
      workers: inv.workers,
      timeoutMs: inv.spec.maxWallMs,
      signal: controller.signal,
      onResult: (job, r, ms) => {
        const rec = runRecord(job.id, byId.get(job.id)!, r, ms);
        writer?.write(rec);
        done.push(rec);
        progress?.tick(isFailure(r.outcome));
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    writer?.close();
    progress?.finish();
  }
  if (signal !== undefined) {
    io.err(`campaign stopped by ${signal}: ${done.length} of ${mine.length} runs recorded${inv.out ? ` in ${inv.out}; the same command with --resume finishes it` : ''}\n`);
    return signal === 'SIGINT' ? 130 : 143;
  }
  io.err(`ran ${s.results.length} run(s) on ${s.workers} worker(s) in ${(s.ms / 1000).toFixed(1)} s\n`);
  const t = tally(done.map((r) => ({ id: r.id, input: r.input, result: resultOf(r) })));
  io.out(formatSummary(t) + '\n');
  return t.failures.length > 0 ? EXIT.FAILED : EXIT.OK;
}

/** `campaign merge FILE...`: the records of every shard, checked to be one campaign with every run once, summarised. */
function merge(files: readonly string[], io: Io): number {
  if (files.length === 0) throw new UsageError('campaign merge needs the result files of the shards (ioemu campaign merge a.jsonl b.jsonl ...)');
  const parts = files.map((f) => ({ file: f, ...readResults(f) }));
  const first = parts[0]!;
  const spec = JSON.stringify(first.header.spec);
  const byId = new Map<number, { rec: RunRecord; file: string }>();
  const shards = new Set<number>();
  for (const p of parts) {
    if (JSON.stringify(p.header.spec) !== spec || p.header.runs !== first.header.runs) throw new UsageError(`${p.file}: another campaign than ${first.file} (their headers differ)`);
    if ((p.header.shard?.count ?? 1) !== (first.header.shard?.count ?? 1)) throw new UsageError(`${p.file}: split into ${p.header.shard?.count ?? 1} shards, ${first.file} into ${first.header.shard?.count ?? 1}`);
    if (p.header.shard !== null) {
      if (shards.has(p.header.shard.index)) throw new UsageError(`${p.file}: shard ${p.header.shard.index}/${p.header.shard.count} is given twice`);
      shards.add(p.header.shard.index);
    }
    for (const rec of p.records) {
      const have = byId.get(rec.id);
      if (have !== undefined && (have.rec.outcome !== rec.outcome || have.rec.detail !== rec.detail)) {
        throw new UsageError(`run #${rec.id} has two different results (${have.file}: ${have.rec.outcome}, ${p.file}: ${rec.outcome})`);
      }
      if (have === undefined) byId.set(rec.id, { rec, file: p.file });
    }
  }
  const missing: number[] = [];
  for (let id = 0; id < first.header.runs; id++) if (!byId.has(id)) missing.push(id);
  if (missing.length > 0) {
    const count = first.header.shard?.count;
    const lacking = count === undefined ? [] : [...new Set(missing.map((id) => (id % count) + 1))].sort((a, b) => a - b);
    throw new UsageError(
      `merge: ${missing.length} of ${first.header.runs} runs have no record (ids ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''})` +
        (lacking.length ? `: shard(s) ${lacking.map((i) => `${i}/${count}`).join(', ')} missing or unfinished (--resume finishes one)` : ''),
    );
  }
  const t = tally([...byId.values()].map(({ rec }) => ({ id: rec.id, input: rec.input, result: resultOf(rec) })));
  io.out(formatSummary(t) + '\n');
  return t.failures.length > 0 ? EXIT.FAILED : EXIT.OK;
}

/** `campaign replay FILE ID`: one recorded run again, here. */
function replay(args: readonly string[], io: Io): number {
  if (args.length !== 2) throw new UsageError('campaign replay needs a results file and a run id (ioemu campaign replay results.jsonl 17)');
  const f = readResults(args[0]!);
  const id = intOption('replay: the run id', args[1]!, 0, f.header.runs - 1);
  const rec = f.records.find((r) => r.id === id);
  if (rec === undefined) throw new UsageError(`${args[0]}: no record of run #${id}`);
  const r = runCampaignInput(rec.input);
  io.out(`run #${id}: ${r.outcome} (recorded: ${rec.outcome})${r.detail ? `: ${r.detail.split('\n')[0]}` : ''}\n  input: ${JSON.stringify(rec.input)}\n`);
  return isFailure(r.outcome) ? EXIT.FAILED : EXIT.OK;
}

export async function cmdCampaign(args: string[], io: Io, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  // The old spelling `campaign --figures` stays an alias of the figures mode.
  const argv = args[0] === '--figures' ? ['figures', ...args.slice(1)] : args;
  const mode = argv[0];
  if (mode === undefined) throw new UsageError(`campaign needs a mode (${[...CAMPAIGN_MODES, 'merge', 'replay', 'figures'].join(', ')}; see "ioemu campaign --help")`);
  if (mode === '--help' || mode === '-h' || mode === 'help') return io.out(CAMPAIGN_HELP), EXIT.OK;
  const rest = argv.slice(1);
  if (mode === 'merge' || mode === 'replay' || mode === 'figures') {
    const o = parseArgs(rest, {});
    if (o.flags.has('--help')) return io.out(CAMPAIGN_HELP), EXIT.OK;
    if (mode === 'merge') return merge(o.positional, io);
    if (mode === 'replay') return replay(o.positional, io);
    if (o.positional.length > 0) throw new UsageError(`campaign figures takes no arguments (got "${o.positional[0]}")`);
    const f = collectFigures(Number(env.IOEMU_FIGURES_SCALE ?? 1));
    io.out(formatFigures(f) + '\n');
    return f.invariantsViolated > 0 ? EXIT.FAILED : EXIT.OK;
  }
  if (!(CAMPAIGN_MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`campaign: unknown mode "${mode}" (modes: ${[...CAMPAIGN_MODES, 'merge', 'replay', 'figures'].join(', ')}; see "ioemu campaign --help")`);
  }
  const o = parseArgs(rest, { values: RUN_OPTIONS, flags: ['--resume', '--quiet'] });
  if (o.flags.has('--help')) return io.out(CAMPAIGN_HELP), EXIT.OK;
  return runMode(mode as CampaignMode, o, io, env);
}
