/**
 * Issue 20, item 1: every bad input a new user tried is exit 2 with one line
 * naming the bad part and what is accepted, found before any work starts; a
 * scenario's own exception is its failure (exit 1, with its stack); exit 3 is
 * for faults inside ioemu only. Each case is a line of the list.
 */
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './run-cli.ts';

const FIX = 'test/cli/fixtures';
const dir = mkdtempSync(join(tmpdir(), 'ioemu-bad-'));


/** Exit 2, one "ioemu: ..." line matching `re`, and nothing run (no narrative, no summary). */
async function usage(t: Test, argv: string[], re: RegExp): Promise<void> {
  const r = await cli(...argv);
  t.equal(r.code, 2, argv.join(' '));
  t.match(r.err.split('\n')[0], re, argv.join(' '));
  t.equal(r.out, '', `${argv.join(' ')}: nothing ran`);
}

t.test('parameter values outside their schema are exit 2 naming the range, before the run', async (t) => {
  const cases: [string, RegExp][] = [
    ['atc-entries=0', /--param atc-entries=0: must be an integer in 1\.\.65535/],
    ['atc-entries=1.5', /--param atc-entries=1\.5: must be an integer in 1\.\.65535/],
    ['prg-pages=0', /--param prg-pages=0: must be an integer in 1\.\.255/],
    ['ram-mib=0', /--param ram-mib=0: must be an integer in 16\.\.1048576/],
    ['ram-mib=1', /--param ram-mib=1: must be an integer in 16\.\.1048576/],
    ['iotlb-entries=0', /--param iotlb-entries=0: must be an integer in 1\.\.1048576/],
    ['pages=300', /--param pages=300: must be an integer in 1\.\.256/],
    ['pages=abc', /--param pages=abc: must be an integer in 1\.\.256/],
    ['smmu-pri=on', /--param smmu-pri=on: must be one of mainline, posted-series/],
    ['smmu-pri=1', /--param smmu-pri=1: must be one of mainline, posted-series/],
  ];
  for (const [p, re] of cases) await usage(t, ['run', 'default', '--param', p], re);
  await usage(t, ['sweep', 'default', '--param', 'pages=2,300'], /--param pages=300: must be an integer in 1\.\.256/);
  await usage(t, ['sweep', 'default', '--param', 'smmu-pri=mainline,upstream'], /--param smmu-pri=upstream: must be one of mainline, posted-series/);
});

t.test('output paths are checked for writability before any work: run --trace/--report, sweep --out', async (t) => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  await usage(t, ['run', 'default', '--trace', '/nonexistent/dir/t.json'], /--trace \/nonexistent\/dir\/t\.json: cannot write there \(the folder \/nonexistent\/dir does not exist\)/);
  await usage(t, ['run', 'default', '--report', join(file, 'r.html')], /--report .*r\.html: cannot write there/);
  await usage(t, ['run', 'default', '--trace', dir], /is a folder, not a file/);
  const r = await cli('sweep', 'default', '--param', 'pages=2,4', '--out', '/nonexistent/dir/s.csv');
  t.equal(r.code, 2);
  t.notMatch(r.err, /\[1\/2\]/, 'no run started');
  const fresh = join(dir, 'fresh.json');
  t.equal((await cli('run', `${FIX}/tiny.json`, '--quiet', '--trace', fresh, '--param', 'pages=1')).code, 2, 'a bad parameter after a good path');
  t.notOk(existsSync(fresh), 'the check leaves no empty file behind');
});

t.test("a scenario's own exception is its failure: exit 1 with the stack; a syntax error at load too", async (t) => {
  const thrown = await cli('run', `${FIX}/throws.ts`);
  t.equal(thrown.code, 1);
  t.match(thrown.out, /about to throw/);
  t.match(thrown.out, /FAILED: the scenario threw: Error: the scenario gave up\n\s+at .*fixtures\/throws\.ts:\d+/);
  t.notMatch(thrown.err, /internal error/);
  const typeError = await cli('run', `${FIX}/type-error.ts`, '--quiet');
  t.equal(typeError.code, 1);
  t.match(typeError.err, /FAILED: the scenario threw: TypeError: Cannot read properties of undefined \(reading 'here'\)\n\s+at .*fixtures\/type-error\.ts:\d+/, 'quiet still shows the stack');
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(dir, 'broken.ts'), 'export default { name: "broken", run( {\n');
  const syntax = await cli('run', join(dir, 'broken.ts'));
  t.equal(syntax.code, 1);
  t.match(syntax.err, /scenario .*broken\.ts failed to load: .*broken\.ts:2:0: ERROR/s);
  // A .ts file in a folder that is no ES module package (no package.json "type": "module") loads as CommonJS.
  const noModule = mkdtempSync(join(tmpdir(), 'ioemu-cjs-'));
  writeFileSync(join(noModule, 'plain.ts'), 'export default { name: "plain", description: "", run() { throw new Error("plain gave up"); } };\n');
  const plain = spawnSync(process.execPath, ['bin/ioemu', 'run', join(noModule, 'plain.ts'), '--quiet'], { encoding: 'utf8' });
  t.equal(plain.status, 1, plain.stderr);
  t.match(plain.stderr, /FAILED: the scenario threw: Error: plain gave up\n\s+at .*plain\.ts:1/);
});

t.test('exit 3 only for a fault inside ioemu, with its stack', async (t) => {
  const r = await cli('run', `${FIX}/ioemu-throws.ts`);
  t.equal(r.code, 3);
  t.match(r.out, /FAILED: ioemu threw \(a fault inside ioemu\): RangeError: delay must be a finite/);
  t.match(r.err, /^ioemu: internal error during ioemu-throws on q35-vtd \(a fault inside ioemu/);
  t.match(r.err, /src\/sim\/scheduler\.ts/);
});

t.test('help for an unknown command, extra arguments and --version', async (t) => {
  await usage(t, ['help', 'bogus'], /no help for "bogus": it is not a command \(commands: run, sweep, campaign, list, points, cc, exec, help\)/);
  await usage(t, ['help', 'run', 'extra'], /help takes one command at most/);
  await usage(t, ['list', 'extra'], /list takes no arguments \(got "extra"\)/);
  await usage(t, ['run', 'default', 'extra'], /run takes one scenario; unexpected argument "extra"/);
  await usage(t, ['points', 'extra'], /points takes no arguments/);
  await usage(t, ['run', 'default', '--seed', '1', '--seed', '2'], /option --seed is given twice/);
  const v = await cli('--version');
  t.equal(v.code, 0);
  t.equal(v.out, `ioemu ${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`);
  for (const topic of ['run', 'sweep', 'campaign', 'list', 'points', 'cc', 'exec']) t.equal((await cli('help', topic)).code, 0, `help ${topic}`);
});

t.test('a closed pipe ends the command quietly (ioemu points | head -1)', async (t) => {
  const child = spawn(process.execPath, ['bin/ioemu', 'points'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => void (err += d));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.equal(code, 0);
  t.equal(err, '', 'nothing on stderr');
  const shell = spawnSync('bash', ['-c', 'node bin/ioemu points | head -1 >/dev/null; echo "${PIPESTATUS[0]}"'], { encoding: 'utf8' });
  t.equal(shell.stdout.trim(), '0');
  t.equal(shell.stderr, '');
});

t.test('plans: an action a point does not take and a point the machine lacks are exit 2; an optional rule is skipped where absent', async (t) => {
  const delay = join(dir, 'delay.plan.json');
  writeFileSync(delay, JSON.stringify({ rules: [{ point: 'vtd.walk_read', action: { kind: 'delay', ns: 1000 } }] }));
  await usage(t, ['run', `${FIX}/tiny.json`, '--inject', delay], /--inject: on q35-vtd: rules\[0\]\.action\.kind: "vtd\.walk_read" cannot delay \(it supports: fail, drop, corrupt\)/);
  const other = join(dir, 'other.plan.json');
  writeFileSync(other, JSON.stringify({ rules: [{ point: 'smmuv3.walk_read', action: { kind: 'fail' } }] }));
  await usage(t, ['run', `${FIX}/tiny.json`, '--inject', other], /unknown injection point "smmuv3\.walk_read" \(add "optional": true/);
  const both = join(dir, 'both.plan.json');
  writeFileSync(both, JSON.stringify({ rules: [{ point: 'smmuv3.walk_read', optional: true, when: { nth: 1 }, action: { kind: 'fail' } }, { point: 'vtd.walk_read', optional: true, when: { nth: 1 }, action: { kind: 'fail' } }] }));
  const r = await cli('run', `${FIX}/tiny.json`, '--machine', 'all', '--inject', both);
  t.match(r.out, /fault plan: smmuv3\.walk_read -> fail: not on q35-vtd \(optional rule, skipped\)/);
  t.match(r.out, /fault plan: vtd\.walk_read -> fail: not on virt-smmuv3 \(optional rule, skipped\)/);
  t.match(r.out, /fault plan: smmuv3\.walk_read -> fail: \d+ matching hit\(s\), 1 injected/);
  const typo = join(dir, 'typo.plan.json');
  writeFileSync(typo, JSON.stringify({ rules: [{ point: 'vtd.walk_reed', optional: true, action: { kind: 'fail' } }] }));
  await usage(t, ['run', `${FIX}/tiny.json`, '--machine', 'all', '--inject', typo], /no machine of this run \(virt-smmuv3, q35-vtd\) has a point "vtd\.walk_reed"/);
});

t.test('the PRI service time at the device includes an injected response delay', async (t) => {
  const plan = join(dir, 'late.plan.json');
  writeFileSync(plan, JSON.stringify({ rules: [{ point: 'dma-engine.pri.response', action: { kind: 'delay', ns: 50_000 } }] }));
  const r = await cli('run', `${FIX}/sva.json`, '--inject', plan);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /service time at the device mean 51\.0 us, p50 51\.0 us, p99 51\.0 us, max 51\.0 us \(host handling mean 1\.00 us\)/);
  t.match(r.out, /dma-engine\.pri\.response -> delay: 4 matching hit\(s\), 4 injected/);
});

t.test('sweep takes seeds as a dimension (--param seed=A..B)', async (t) => {
  const out = join(dir, 'seeds.csv');
  const r = await cli('sweep', `${FIX}/tiny.json`, '--param', 'seed=3..5', '--out', out);
  t.equal(r.code, 0, r.err);
  const rows = readFileSync(out, 'utf8').trim().split('\n');
  t.equal(rows[0]!.split(',')[0], 'seed');
  t.same(rows.slice(1).map((l) => l.split(',')[0]), ['3', '4', '5'], "the seed column is the run's own seed (RunResult.seed)");
  await usage(t, ['sweep', `${FIX}/tiny.json`, '--param', 'seed=1..3', '--seed', '2'], /--seed and --param seed=\.\.\. both give the seed/);
  await usage(t, ['sweep', `${FIX}/tiny.json`, '--param', 'seed=5..1'], /a range A\.\.B needs A <= B/);
});
