/**
 * Issue 20, item 4: the engines that carry a campaign past one machine, as
 * examples under deploy/ (a Kubernetes Indexed Job with its merge Job, a
 * GitHub Actions matrix workflow with its merge job). Both are parsed (the
 * yaml package) and their shard arguments are read by the CLI's own parser
 * (parseCampaign), as each pod or job would: together the shards run every
 * run of the campaign exactly once, each into a file of its own, and the
 * merge step reads exactly those files.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { parseCampaign } from '../../cli/campaign/command.ts';
import { campaignRuns, shardRuns, type RunInput } from '../../tools/campaign/campaign.ts';

/** Every run of the campaign exactly once across the shards' runs. */
function coversOnce(t: Test, all: readonly RunInput[], shards: readonly { id: number }[][]): void {
  const count = new Map<number, number>();
  for (const s of shards) for (const r of s) count.set(r.id, (count.get(r.id) ?? 0) + 1);
  t.equal(count.size, all.length, `the ${shards.length} shards together run all ${all.length} runs`);
  t.same([...count.values()].filter((c) => c !== 1), [], 'each run in exactly one shard');
  t.ok(shards.every((s) => s.length > 0), 'no shard is empty');
}

interface K8sJob {
  kind: string;
  metadata: { name: string };
  spec: { completionMode?: string; completions?: number; parallelism?: number; template: { spec: { containers: { args: string[] }[] } } };
}

t.test('the Kubernetes Indexed Job: each index runs its part, the shards cover the campaign once, the merge Job reads their files', async (t) => {
  const docs = parseAllDocuments(readFileSync('deploy/kubernetes/campaign-job.yaml', 'utf8')).map((d) => d.toJS() as K8sJob);
  const job = docs.find((d) => d.kind === 'Job')!;
  t.equal(job.spec.completionMode, 'Indexed');
  const n = job.spec.completions!;
  t.ok(n > 1, `${n} completions`);
  t.equal(job.spec.parallelism, n, 'every shard at once');
  const args = job.spec.template.spec.containers[0]!.args;
  t.equal(args[0], 'campaign');
  t.ok(args.includes('--resume'), 'a pod started again for its index resumes its file');
  const parts = Array.from({ length: n }, (_, index) => parseCampaign(args.slice(1), { JOB_COMPLETION_INDEX: String(index) }));
  t.same(parts.map((p) => p.shard), Array.from({ length: n }, (_, i) => ({ index: i + 1, count: n })), 'index i runs part i+1 of n');
  t.ok(parts.every((p) => JSON.stringify(p.spec) === JSON.stringify(parts[0]!.spec)), 'one campaign');
  const all = campaignRuns(parts[0]!.spec);
  coversOnce(t, all, parts.map((p) => shardRuns(all, p.shard)));
  const outs = parts.map((p) => p.out!);
  t.equal(new Set(outs).size, n, `a file per shard: ${outs[0]} ...`);
  const merge = parse(readFileSync('deploy/kubernetes/merge-job.yaml', 'utf8')) as K8sJob;
  const margs = merge.spec.template.spec.containers[0]!.args;
  t.same(margs.slice(0, 2), ['campaign', 'merge']);
  t.same([...margs.slice(2)].sort(), [...outs].sort(), 'the merge reads exactly the shards\' files');
});

interface Workflow {
  jobs: Record<string, { needs?: string | string[]; strategy?: { matrix: { shard: number[] } }; steps: { run?: string; uses?: string; with?: Record<string, unknown> }[] }>;
}

/** A step's command line as the runner gives it to the shell, with the matrix value in, split into words. */
function argv(run: string, matrix: Record<string, string>): string[] {
  return run.replace(/\$\{\{\s*matrix\.(\w+)\s*\}\}/g, (_m, k: string) => matrix[k]!).trim().split(/\s+/);
}

/** A shell glob (* only) as a regular expression. */
const glob = (g: string) => new RegExp(`^${g.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);

t.test('the GitHub Actions matrix: each job runs its part, the shards cover the campaign once, the merge job reads their files', async (t) => {
  const wf = parse(readFileSync('deploy/github-actions/campaign.yml', 'utf8')) as Workflow;
  const shardJob = wf.jobs.shard!;
  const values = shardJob.strategy!.matrix.shard;
  const n = values.length;
  t.ok(n > 1, `${n} shards`);
  const step = shardJob.steps.find((s) => s.run?.includes('ioemu campaign'))!;
  const parts = values.map((v) => {
    const words = argv(step.run!, { shard: String(v) });
    t.same(words.slice(0, 3), ['node', 'bin/ioemu', 'campaign']);
    return parseCampaign(words.slice(3), {});
  });
  t.same(parts.map((p) => p.shard), values.map((v) => ({ index: v, count: n })), 'matrix value i runs part i of n');
  const all = campaignRuns(parts[0]!.spec);
  coversOnce(t, all, parts.map((p) => shardRuns(all, p.shard)));
  const outs = parts.map((p) => p.out!);
  t.equal(new Set(outs).size, n, 'a file per shard');
  const upload = shardJob.steps.find((s) => s.uses?.startsWith('actions/upload-artifact'))!;
  values.forEach((v, i) => t.equal(argv(String(upload.with!.path), { shard: String(v) })[0], outs[i], `shard ${v} uploads its file`));
  const merge = wf.jobs.merge!;
  t.same([merge.needs].flat(), ['shard'], 'the merge waits for every shard');
  const download = merge.steps.find((s) => s.uses?.startsWith('actions/download-artifact'))!;
  t.ok(values.every((v) => glob(String(download.with!.pattern)).test(`campaign-shard-${v}`)), 'it downloads every shard\'s artifact');
  const words = argv(merge.steps.find((s) => s.run?.includes('campaign merge'))!.run!, {});
  t.same(words.slice(0, 4), ['node', 'bin/ioemu', 'campaign', 'merge']);
  const patterns = words.slice(4).map(glob);
  t.ok(outs.every((o) => patterns.some((p) => p.test(o))), 'its arguments match every shard\'s file');
  t.same(outs.filter((o) => patterns.filter((p) => p.test(o)).length !== 1), [], 'each file once');
});
