import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './run-cli.ts';

const FIX = 'test/cli/fixtures';
const dir = mkdtempSync(join(tmpdir(), 'ioemu-cli-'));


t.test('help: the top-level help names every command and the exit codes; each command has its own', async (t) => {
  const h = await cli('--help');
  t.equal(h.code, 0);
  for (const w of ['ioemu run', 'ioemu sweep', 'ioemu list', 'Exit status']) t.match(h.out, w);
  const r = await cli('run', '--help');
  t.equal(r.code, 0);
  for (const w of ['--machine', '--seed', '--trace', '--inject', '--report', '--param', 'Examples']) t.match(r.out, w);
  const s = await cli('sweep', '--help');
  t.equal(s.code, 0);
  t.match(s.out, /--param NAME=V1,V2/);
  t.match(s.out, /--out FILE/);
});

t.test('usage errors exit 2 and say what was wrong', async (t) => {
  for (const argv of [['frobnicate'], ['run'], ['run', 'no-such-scenario'], ['run', `${FIX}/tiny.json`, '--machine', 'pdp11'], ['run', `${FIX}/tiny.json`, '--bogus'],
    ['run', `${FIX}/tiny.json`, '--seed', 'x'], ['sweep', `${FIX}/tiny.json`], ['run', `${FIX}/tiny.json`, '--param', 'nonsense=1'], ['run', `${FIX}/tiny.json`, '--inject', `${FIX}/tiny.json`]]) {
    const r = await cli(...argv);
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.err, /^ioemu: /, 'a one-line reason');
  }
});

t.test('a passing JSON scenario exits 0; a failing one exits 1', async (t) => {
  const ok = await cli('run', `${FIX}/tiny.json`);
  t.equal(ok.code, 0, ok.out + ok.err);
  t.match(ok.out, /read of 64 bytes at 0x100000: ok/);
  t.match(ok.out, /summary: tiny on q35-vtd, seed 1: PASSED/);
  const bad = await cli('run', `${FIX}/faulty.json`, '--machine', 'virt-smmuv3');
  t.equal(bad.code, 1);
  t.match(bad.out, /FAILED/);
});

t.test('SVA over untouched memory through a ring, described in JSON, resolves its faults by PRI on q35-vtd', async (t) => {
  const r = await cli('run', `${FIX}/sva.json`);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /4 untouched pages through the ring: SUCCESS, data verified/);
  t.match(r.out, /4 groups answered/);
});

t.test('--trace writes Chrome trace JSON, --report a self-contained HTML file with SVG plots; same seed, same trace bytes', async (t) => {
  const a = join(dir, 'a.json');
  const b = join(dir, 'b.json');
  const html = join(dir, 'r.html');
  const r = await cli('run', 'default', '--trace', a, '--report', html, '--quiet');
  t.equal(r.code, 0, r.out + r.err);
  const trace = JSON.parse(readFileSync(a, 'utf8'));
  t.ok(Array.isArray(trace.traceEvents) && trace.traceEvents.length > 100);
  t.ok(trace.traceEvents.every((e: { ph: string; ts: number; pid: number }) => typeof e.ph === 'string' && typeof e.ts === 'number' && typeof e.pid === 'number'));
  t.ok(trace.traceEvents.some((e: { name: string }) => e.name === 'iopf.response'));
  t.ok(trace.traceEvents.some((e: { name: string }) => e.name === 'fault.inject'));
  const page = readFileSync(html, 'utf8');
  t.match(page, /^<!doctype html>/);
  t.ok((page.match(/<svg /g) ?? []).length >= 5, 'histograms, activity, counters, hit rates');
  t.notMatch(page, /<script src|<link|src="http|url\(http|@import/, 'nothing external');
  t.match(page, /Page-fault service time/);
  await cli('run', 'default', '--trace', b, '--quiet');
  t.equal(readFileSync(b, 'utf8'), readFileSync(a, 'utf8'), 'byte for byte');
  const c = join(dir, 'c.json');
  await cli('run', 'default', '--trace', c, '--quiet', '--seed', '2');
  t.ok(JSON.parse(readFileSync(c, 'utf8')).otherData.seed === '2');
});

t.test('--inject arms a plan file before the scenario starts, and the summary shows what it did', async (t) => {
  const r = await cli('run', 'default', '--inject', `${FIX}/drop-pri.plan.json`);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /fault plan: dma-engine\.pri\.request -> drop: \d+ matching hit\(s\), 1 injected/);
});

t.test('sweep writes one CSV row per value, with the swept column first', async (t) => {
  const out = join(dir, 's.csv');
  const html = join(dir, 's.html');
  const r = await cli('sweep', 'default', '--param', 'atc-entries=2,64', '--param', 'pages=2', '--out', out, '--report', html);
  t.equal(r.code, 0, r.err);
  t.match(r.err, /\[1\/2\] atc-entries=2 pages=2: ok/);
  t.match(r.err, /\[2\/2\] atc-entries=64 pages=2: ok/);
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  t.equal(lines.length, 3);
  const head = lines[0]!.split(',');
  t.same(head.slice(0, 3), ['atc-entries', 'pages', 'machine']);
  for (const col of ['iopf_mean_ns', 'atc_hit_rate', 'iotlb_hit_rate', 'sva.groups']) t.ok(head.includes(col), col);
  t.equal(lines[1]!.split(',')[0], '2');
  t.equal(lines[2]!.split(',')[0], '64');
  const page = readFileSync(html, 'utf8');
  t.match(page, /<h1>ioemu report: default, sweep of atc-entries and pages<\/h1>/);
  t.match(page, /<th rowspan="2">atc-entries<\/th>/, 'the swept parameter is a column of the comparison');
  t.equal((page.match(/<section id="run-/g) ?? []).length, 2, 'a section per sweep point');
});

t.test('bin/ioemu runs as a child process and returns the exit status', async (t) => {
  const ok = execFileSync(process.execPath, ['bin/ioemu', 'run', `${FIX}/tiny.json`, '--quiet'], { encoding: 'utf8' });
  t.match(ok, /PASSED/);
  const bad = spawnSync(process.execPath, ['bin/ioemu', 'run', 'nope'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  const list = execFileSync(process.execPath, ['bin/ioemu', 'list'], { encoding: 'utf8' });
  t.match(list, /default/);
  t.match(list, /atc-entries/);
});

t.test('--machine all (npm start) runs the scenario on both machines: one trace with a process per machine, one report, a comparison table', async (t) => {
  const trace = join(dir, 'all.json');
  const html = join(dir, 'all.html');
  const r = await cli('run', 'default', '--machine', 'all', '--trace', trace, '--report', html, '--param', 'pages=4');
  t.equal(r.code, 0, r.out + r.err);
  t.match(r.out, /summary: default on virt-smmuv3, seed 1: PASSED/);
  t.match(r.out, /summary: default on q35-vtd, seed 1: PASSED/);
  t.match(r.out, /default on 2 machines:\nmachine +result/);
  t.match(r.out, /virt-smmuv3 +PASSED/);
  t.match(r.out, /q35-vtd +PASSED/);
  const j = JSON.parse(readFileSync(trace, 'utf8'));
  t.same([...new Set(j.traceEvents.map((e: { pid: number }) => e.pid))].sort(), [1, 2]);
  const names = j.traceEvents.filter((e: { name: string }) => e.name === 'process_name').map((e: { args: { name: string } }) => e.args.name);
  t.same(names, ['ioemu virt-smmuv3', 'ioemu q35-vtd']);
  t.equal(j.otherData.machines, 'virt-smmuv3,q35-vtd');
  const page = readFileSync(html, 'utf8');
  t.match(page, /<h1>ioemu report: default on virt-smmuv3 and q35-vtd<\/h1>/);
  t.match(page, /<table class="compare">/, 'the machines compared at the top');
  t.match(page, /<h2>default on virt-smmuv3 \(pages=4\): <span class="ok">PASSED/);
  t.match(page, /<h2>default on q35-vtd \(pages=4\): <span class="ok">PASSED/);
  const sw = await cli('sweep', 'default', '--machine', 'all', '--param', 'pages=2');
  t.equal(sw.code, 0, sw.err);
  t.match(sw.err, /\[2\/2\] pages=2 on q35-vtd: ok/);
  t.equal(sw.out.trim().split('\n').length, 3, 'a header and one row per machine');
});

t.test('points lists every injection point of src/fault/points.ts with its description', async (t) => {
  const { INJECTION_POINTS } = await import('../../machines/points.ts');
  const r = await cli('points');
  t.equal(r.code, 0);
  const names = Object.keys(INJECTION_POINTS);
  t.match(r.out, new RegExp(`^${names.length} injection points`));
  for (const n of names) t.match(r.out, `  ${n} `, n);
});
