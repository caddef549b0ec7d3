/**
 * Issue 20, items 2 and 3: `ioemu campaign` as a subcommand with its own help
 * and validated arguments, sharding the way test runners do it, JSON Lines
 * records, merge and resume. The acceptance test: a campaign run as 4 shards
 * and merged prints the same summary, byte for byte, as the campaign run
 * unsharded; so does one stopped part-way (SIGTERM, then a record cut short
 * as a node that goes away leaves it) and resumed.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './run-cli.ts';
import { parseCampaign } from '../../cli/campaign/command.ts';
import { Progress } from '../../cli/campaign/progress.ts';
import { campaignRuns, inShard, shardRuns } from '../../tools/campaign/campaign.ts';

t.setTimeout(900_000);
const dir = mkdtempSync(join(tmpdir(), 'ioemu-campaign-'));


/** A small campaign: a random plan per seed on both machines (10 runs), no progress lines. */
const CAMPAIGN = ['campaign', 'random', '--machine', 'all', '--seeds', '5', '--quiet'];
const records = (file: string) => readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as { id: number; input: { machine: string; seed: number; plan: unknown }; outcome: string });

t.test('campaign --help lists every mode (figures too) and option; the npm script is an alias', async (t) => {
  const h = await cli('campaign', '--help');
  t.equal(h.code, 0);
  for (const w of ['sweep', 'random', 'model', 'plan', 'merge', 'replay', 'figures', '--shard i/n', '--shards N', 'JOB_COMPLETION_INDEX', '--seed-start', '--seeds', '--max-virtual-time', '--max-wall-time', '--out FILE', '--resume', '--workers']) {
    t.match(h.out, w, w);
  }
  t.equal((await cli('help', 'campaign')).out, h.out);
  const alias = spawnSync(process.execPath, ['--import', 'tsx', 'cli/campaign/cli.ts', '--help'], { encoding: 'utf8' });
  t.equal(alias.status, 0, alias.stderr);
  t.equal(alias.stdout, h.out, 'npm run campaign -- --help');
});

t.test('bad campaign arguments are exit 2 with the accepted range, before any run', async (t) => {
  const existing = join(dir, 'existing.jsonl');
  writeFileSync(existing, 'x\n');
  const cases: [string[], RegExp][] = [
    [['random', '--seeds', 'abc'], /--seeds abc: must be an integer in 1\.\.1000000/],
    [['random', '--kind', 'foo'], /--kind foo: not a machine \(use virt-smmuv3, q35-vtd or all\)/],
    [['random', '--workers', '0'], /--workers 0: must be an integer in 1\.\.256/],
    [['random', '--shard', '5/4'], /--shard 5\/4: must be i\/n with 1 <= i <= n/],
    [['random', '--shard', '0/4'], /--shard 0\/4: must be i\/n/],
    [['random', '--shards', '4'], /JOB_COMPLETION_INDEX, which is not set/],
    [['random', '--resume'], /--resume continues the file of --out/],
    [['random', '--nth', '2'], /--nth does not apply to random \(it applies to sweep\)/],
    [['random', '--max-virtual-time', '5'], /--max-virtual-time 5: must be a duration with a unit/],
    [['random', '--out', existing], /has results already \(--resume continues them/],
    [['random', 'extra'], /campaign random takes no arguments/],
    [['sweep', '--points', 'vtd.walk_reed'], /no machine of this campaign .* has a point "vtd\.walk_reed"/],
    [['plan'], /campaign plan needs --plan FILE/],
    [['frobnicate'], /campaign: unknown mode "frobnicate"/],
    [[], /campaign needs a mode/],
    [['merge'], /campaign merge needs the result files/],
  ];
  for (const [args, re] of cases) {
    const r = await cli('campaign', ...args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.err.split('\n')[0], re, args.join(' '));
    t.equal(r.out, '', `${args.join(' ')}: nothing ran`);
  }
});

t.test('shards partition the runs: each run in exactly one, JOB_COMPLETION_INDEX picks the part with --shards', async (t) => {
  const inv = parseCampaign(['random', '--machine', 'all', '--seeds', '50', '--shards', '4'], { JOB_COMPLETION_INDEX: '2' });
  t.same(inv.shard, { index: 3, count: 4 }, 'Indexed Job index 2 is part 3 of 4');
  t.same(parseCampaign(['random', '--shard', '1/4', '--shards', '4'], { JOB_COMPLETION_INDEX: '2' }).shard, { index: 1, count: 4 }, '--shard wins');
  const all = campaignRuns(inv.spec);
  t.equal(all.length, 100);
  for (const n of [1, 3, 4, 7]) {
    const seen = new Map<number, number>();
    for (let i = 1; i <= n; i++) for (const r of shardRuns(all, { index: i, count: n })) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
    t.equal(seen.size, all.length, `${n} shards cover every run`);
    t.ok([...seen.values()].every((c) => c === 1), `${n} shards: each run once`);
  }
  t.ok(inShard(6, { index: 3, count: 4 }) && !inShard(6, { index: 2, count: 4 }), 'run k is in part k % n + 1');
  t.same(campaignRuns({ ...inv.spec, seedStart: 11, seeds: 2 }).map((r) => [r.machine, r.seed]), [['virt-smmuv3', 11], ['virt-smmuv3', 12], ['q35-vtd', 11], ['q35-vtd', 12]], '--seed-start and --seeds');
});

let unsharded = '';

t.test('4 shards merged print the unsharded summary byte for byte; every record holds its full input', async (t) => {
  const all = await cli(...CAMPAIGN, '--out', join(dir, 'all.jsonl'));
  t.equal(all.code, 0, all.err);
  unsharded = all.out;
  t.match(unsharded, /^10 runs: /);
  const recs = records(join(dir, 'all.jsonl'));
  t.same(recs.map((r) => r.id).sort((a, b) => a - b), [...Array(10).keys()]);
  for (const r of recs) t.ok(r.input.machine && Number.isInteger(r.input.seed) && r.input.plan, `run #${r.id} carries machine, seed and plan`);
  for (let i = 1; i <= 4; i++) {
    const s = await cli(...CAMPAIGN, '--shard', `${i}/4`, '--out', join(dir, 'shard-{shard}.jsonl'));
    t.equal(s.code, 0, s.err);
    t.match(s.err, new RegExp(`runs \\(shard ${i}/4\\)`));
  }
  const files = [1, 2, 3, 4].map((i) => join(dir, `shard-${i}-of-4.jsonl`));
  t.same(records(files[1]!).map((r) => r.id).sort((a, b) => a - b), [1, 5, 9], 'shard 2/4 holds runs 1, 5, 9');
  const merged = await cli('campaign', 'merge', ...files);
  t.equal(merged.code, 0, merged.err);
  t.equal(merged.out, unsharded, 'byte for byte');
  const short = await cli('campaign', 'merge', files[0]!, files[1]!, files[3]!);
  t.equal(short.code, 2);
  t.match(short.err, /merge: 2 of 10 runs have no record \(ids 2, 6\): shard\(s\) 3\/4 missing or unfinished/);
  const twice = await cli('campaign', 'merge', files[0]!, files[0]!);
  t.equal(twice.code, 2);
  t.match(twice.err, /shard 1\/4 is given twice/);
  const other = await cli('campaign', 'merge', join(dir, 'all.jsonl'), files[0]!);
  t.equal(other.code, 2, 'an unsharded file and a shard');
  const replay = await cli('campaign', 'replay', join(dir, 'all.jsonl'), '3');
  t.match(replay.out, new RegExp(`^run #3: (\\w+) \\(recorded: \\1\\)`), 'a recorded run replays alone, with its outcome');
});

/**
 * A campaign long enough that it cannot finish between the poll that sees its third record and the signal: 10 runs
 * took 0.2-0.5 s on one worker, and a fast machine finished all of them before SIGTERM came (CI, 2026-12-08).
 */
const LONG_CAMPAIGN = ['campaign', 'random', '--machine', 'all', '--seeds', '60', '--quiet'];

t.test('a campaign stopped part-way keeps its finished records, and --resume completes it to the same summary', async (t) => {
  const through = await cli(...LONG_CAMPAIGN, '--workers', '1', '--out', join(dir, 'long.jsonl'));
  t.equal(through.code, 0, through.err);
  t.match(through.out, /^120 runs: /);
  const file = join(dir, 'stopped.jsonl');
  const child = spawn(process.execPath, ['bin/ioemu', ...LONG_CAMPAIGN, '--workers', '1', '--out', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => void (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  for (let i = 0; i < 6000; i++) {
    if (existsSync(file) && records(file).length >= 3) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGTERM');
  t.equal(await exited, 143, err);
  t.match(err, /campaign stopped by SIGTERM: \d+ of 120 runs recorded in .*stopped\.jsonl; the same command with --resume finishes it/);
  const kept = records(file).length;
  t.ok(kept >= 3 && kept < 120, `${kept} records kept`);
  // A node that goes away mid-write leaves half a record: --resume drops it and runs that run again.
  const recorded = new Set(records(file).map((r) => r.id));
  const next = [...Array(120).keys()].find((id) => !recorded.has(id))!;
  appendFileSync(file, `{"type":"run","id":${next},"input":{"scen`);
  const resumed = await cli(...LONG_CAMPAIGN, '--workers', '1', '--out', file, '--resume');
  t.equal(resumed.code, 0, resumed.err);
  t.match(resumed.err, new RegExp(`${kept} already recorded`));
  t.equal(resumed.out, through.out, 'the same summary as the campaign that ran through');
  t.same(records(file).map((r) => r.id).sort((a, b) => a - b), [...Array(120).keys()], 'every run once');
  const again = await cli(...LONG_CAMPAIGN, '--out', file, '--resume');
  t.equal(again.out, through.out, 'resuming a finished campaign runs nothing and prints its summary');
  const mismatch = await cli('campaign', 'random', '--machine', 'all', '--seeds', '6', '--out', file, '--resume');
  t.equal(mismatch.code, 2);
  t.match(mismatch.err, /holds another campaign or shard/);
});

t.test('per-run limits: virtual time and wall time; a run past either is a timeout (exit 1)', async (t) => {
  const virt = await cli('campaign', 'model', '--machine', 'q35-vtd', '--seeds', '2', '--max-virtual-time', '1ns', '--quiet');
  t.equal(virt.code, 1);
  t.match(virt.out, /^2 runs: 2 timeout/);
  t.match(virt.out, /FAIL #0 timeout: virtual time passed the run's limit of 1 ns/);
  const wall = await cli('campaign', 'model', '--machine', 'q35-vtd', '--seeds', '1', '--max-wall-time', '1ms', '--quiet');
  t.equal(wall.code, 1);
  t.match(wall.out, /FAIL #0 timeout: no result after 1 ms of wall time/);
});

t.test('progress: periodic plain lines without a terminal, a live bar with rate and ETA on one', async (t) => {
  let clock = 0;
  let plain = '';
  const p = new Progress(4, { write: (s) => void (plain += s) }, 'campaign random', { intervalMs: 1000, now: () => clock });
  for (const ms of [500, 1200, 1500, 2600]) {
    clock = ms;
    p.tick(ms === 1500);
  }
  t.same(plain.trim().split('\n'), [
    'campaign random: 1/4 runs (25%), 2.0 runs/s, ETA 2s, 0 failed',
    'campaign random: 3/4 runs (75%), 2.0 runs/s, ETA 1s, 1 failed',
    'campaign random: 4/4 runs (100%), 1.5 runs/s, ETA 0s, 1 failed',
  ]);
  let tty = '';
  clock = 0;
  const bar = new Progress(10, { write: (s) => void (tty += s), isTTY: true, columns: 100 }, 'campaign sweep', { now: () => clock });
  clock = 2000;
  bar.tick(false);
  bar.finish();
  t.match(tty, /^\r\[#+-+\] campaign sweep: 1\/10 runs \(10%\), 0\.5 runs\/s, ETA 18s, 0 failed\x1b\[K\n$/);
  const r = await cli('campaign', 'model', '--machine', 'q35-vtd', '--seeds', '2', '--progress-every', '1ms');
  t.equal(r.code, 0, r.err);
  t.match(r.err, /campaign model: 2\/2 runs \(100%\), [\d.]+ runs\/s, ETA 0s, 0 failed/);
});
