/**
 * Run a fault campaign from the command line:
 *
 *   npx tsx cli/campaign/cli.ts sweep  [--kind q35-vtd|virt-smmuv3|both] [--workers 2] [--json out.json]
 *   npx tsx cli/campaign/cli.ts random [--kind ...] [--seeds 200]
 *   npx tsx cli/campaign/cli.ts model  [--kind ...] [--seeds 500]
 *   npx tsx cli/campaign/cli.ts plan   --plan plan.json [--kind ...]      (one plan on the fixed operation)
 *   npm run campaign -- --figures                                             (issue 9's figures from one run)
 *
 * `sweep` fails the 1st..3rd hit of every injection point on the fixed
 * operation; `random` applies random probability plans (drop, delay, corrupt,
 * fail), one per seed; `model` runs seeded model-based sequences. The
 * summary lists every failure with the input that replays it. Exit status 1
 * when a run broke an invariant, threw or hung.
 */
import { writeFileSync } from 'node:fs';
import type { MachineKind } from '../../machines/layout.ts';
import { readPlanFile } from '../fault-plan-file.ts';
import { collectFigures, formatFigures } from '../../tools/campaign/figures.ts';
import { formatSummary, runCampaign, type CampaignSummary } from './runner.ts';
import { randomPlans, SCENARIOS, sweepPlans, type PlanInput, type SequenceInput } from '../../tools/campaign/scenarios.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  if (process.argv.includes('--figures')) {
    const f = collectFigures(Number(process.env.IOEMU_FIGURES_SCALE ?? 1));
    console.log(formatFigures(f));
    return f.invariantsViolated > 0 ? 1 : 0;
  }
  const mode = process.argv[2] ?? 'sweep';
  const k = arg('kind') ?? 'both';
  const kinds: MachineKind[] = k === 'both' ? ['virt-smmuv3', 'q35-vtd'] : [k as MachineKind];
  const workers = Number(arg('workers') ?? 2);
  const seeds = Array.from({ length: Number(arg('seeds') ?? 100) }, (_, i) => i + 1);
  let summary: CampaignSummary<unknown>;
  if (mode === 'model') {
    const inputs: SequenceInput[] = kinds.flatMap((kind) => seeds.map((seed) => ({ kind, seed })));
    summary = await runCampaign({ scenario: SCENARIOS.modelSequence, jobs: inputs.map((input, id) => ({ id, input })), workers });
  } else {
    let inputs: PlanInput[];
    if (mode === 'sweep') inputs = kinds.flatMap((kind) => sweepPlans({ kind }));
    else if (mode === 'random') inputs = kinds.flatMap((kind) => randomPlans(kind, seeds));
    else if (mode === 'plan') {
      const file = arg('plan');
      if (file === undefined) throw new Error('plan mode needs --plan <file.json>');
      const plan = readPlanFile(file);
      inputs = kinds.map((kind) => ({ kind, plan }));
    } else throw new Error(`unknown mode ${mode} (sweep, random, model, plan)`);
    summary = await runCampaign({ scenario: SCENARIOS.planOnOperation, jobs: inputs.map((input, id) => ({ id, input })), workers });
  }
  console.log(formatSummary(summary));
  const out = arg('json');
  if (out !== undefined) writeFileSync(out, JSON.stringify(summary, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
  return summary.failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(2);
  },
);
