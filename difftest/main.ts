/**
 * `npm run difftest`: the same C programs on real Linux 7.3 (the rig) and on
 * ioemu, their outputs normalised (difftest/normalise.ts) and compared line
 * by line; every differing line is either explained by an entry of
 * docs/linux-differences.md or counted as unexplained. The last line is the
 * count of unexplained differences; the exit status is 1 when it is not 0.
 *
 *   npm run difftest                     build and run each program on the rig and on ioemu
 *   npm run difftest -- --recorded       compare ioemu with difftest/recorded/ (no rig needed)
 *   npm run difftest -- --record         run on the rig, save its outputs to difftest/recorded/, compare
 *   npm run difftest -- errno-type1 ...  only these corpus runs
 *
 * Exit status: 0 no unexplained difference, 1 some, 2 the harness could not
 * run (the rig failed, a build failed, a bad option).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main as ioemu } from '../cli/main.ts';
import { createMachine } from '../src/index.ts';
import { EDU_BDF, EDU_TOPOLOGY } from '../examples/edu/scenario.ts';
import { CORPUS, RIG_DIR, sourceHere, type CorpusRun } from './corpus.ts';
import { diffLines } from './diff.ts';
import { explain, loadDifferences } from './differences.ts';
import { normalise, NORMALISATION_RULES, type Side } from './normalise.ts';

const HERE = new URL('.', import.meta.url).pathname;
const ROOT = join(HERE, '..');
const RECORDED = join(HERE, 'recorded');
const SCENARIO = join(ROOT, 'examples', 'edu', 'scenario.ts');
/** What the rig's /init exports (../shared/rig/guest-init). */
const RIG_GROUP = 3;

class HarnessError extends Error {}

/** The IOMMU group of edu on ioemu's machine, as a process reads it from sysfs. */
function ioemuGroup(): number {
  const m = createMachine('q35-vtd', { devices: [...EDU_TOPOLOGY] });
  const link = m.host.spawn().readlink(`/sys/bus/pci/devices/${EDU_BDF}/iommu_group`);
  if (typeof link !== 'string') throw new HarnessError(`ioemu: no iommu_group for ${EDU_BDF} (${link})`);
  return Number(link.slice(link.lastIndexOf('/') + 1));
}

interface Output {
  lines: string[];
}

/** stdout split in lines, with the exit status as a last pseudo-line (so it is compared too). */
function asLines(stdout: string, status: number): string[] {
  const lines = stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return [...lines, `exit status ${status}`];
}

function runRig(r: CorpusRun): Output {
  const script = join(RIG_DIR, 'run-c.sh');
  if (!existsSync(script)) throw new HarnessError(`no rig at ${RIG_DIR} (set IOEMU_RIG, or use --recorded)`);
  const env = { ...process.env };
  delete env.RIG_ENV;
  let p = spawnSync(script, [r.source, ...r.args], { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  // A boot that failed (125: the rig's own failure, e.g. a TCG guest that hung early on a loaded host) gets one more try.
  if (p.status === null || p.status === 125) p = spawnSync(script, [r.source, ...r.args], { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (p.status === null || p.status === 125) {
    throw new HarnessError(`${r.id}: the rig failed (status ${p.status}):\n${(p.stderr ?? '').split('\n').slice(-8).join('\n')}`);
  }
  return { lines: asLines(p.stdout, p.status) };
}

const built = new Map<string, string>();
async function buildIoemu(source: string, dir: string): Promise<string> {
  const have = built.get(source);
  if (have !== undefined) return have;
  const out = join(dir, `${built.size}.wasm`);
  let err = '';
  const rc = await ioemu(['cc', '-O2', '-Wall', '-o', out, source], { out: () => {}, err: (s) => void (err += s) });
  if (rc !== 0) throw new HarnessError(`ioemu cc ${source} failed (${rc}):\n${err}`);
  built.set(source, out);
  return out;
}

async function runIoemu(r: CorpusRun, wasm: string, group: number): Promise<Output> {
  let out = '';
  let err = '';
  // The environment the rig's /init gives, with ioemu's own group number.
  const env = [`EDU_BDF=${EDU_BDF}`, `EDU_GROUP=${group}`, `VFIO_SELFTESTS_BDF=${EDU_BDF}`].flatMap((e) => ['--env', e]);
  const rc = await ioemu(['exec', '--quiet', '--machine', 'q35-vtd', '--scenario', SCENARIO, ...env, wasm, ...r.args], {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
  });
  if (rc === 2 || rc === 3) throw new HarnessError(`${r.id}: ioemu exec failed (${rc}):\n${err}`);
  return { lines: asLines(out, rc) };
}

function recordedPath(r: CorpusRun): string {
  return join(RECORDED, `${r.id}.txt`);
}

async function cli(argv: string[]): Promise<number> {
  let mode: 'rig' | 'recorded' | 'record' = 'rig';
  const only: string[] = [];
  for (const a of argv) {
    if (a === '--recorded') mode = 'recorded';
    else if (a === '--record') mode = 'record';
    else if (a === '-h' || a === '--help') {
      console.log(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*?|^ \* ?/gm, ''));
      return 0;
    } else if (a.startsWith('-')) throw new HarnessError(`unknown option ${a}`);
    else only.push(a);
  }
  const unknown = only.filter((o) => !CORPUS.some((r) => r.id === o));
  if (unknown.length > 0) throw new HarnessError(`not in the corpus: ${unknown.join(', ')} (have: ${CORPUS.map((r) => r.id).join(', ')})`);
  const runs = CORPUS.filter((r) => only.length === 0 || only.includes(r.id));
  const diffs = loadDifferences(join(ROOT, 'docs', 'linux-differences.md'));
  const linuxSide: Side = { name: 'linux', group: RIG_GROUP };
  const ioemuSide: Side = { name: 'ioemu', group: ioemuGroup() };
  const dir = mkdtempSync(join(tmpdir(), 'ioemu-difftest-'));
  let unexplained = 0;
  let explained = 0;
  let compared = 0;
  let skipped = 0;
  const used = new Set<string>();
  try {
    for (const r of runs) {
      if (!sourceHere(r)) {
        console.log(`${r.id}: skipped (no ${r.source})`);
        skipped++;
        continue;
      }
      let linux: Output;
      if (mode === 'recorded') {
        if (!existsSync(recordedPath(r))) throw new HarnessError(`${r.id}: nothing recorded (${recordedPath(r)}); run --record on a machine with the rig`);
        linux = { lines: readFileSync(recordedPath(r), 'utf8').replace(/\n$/, '').split('\n') };
      } else {
        linux = runRig(r);
        if (mode === 'record') {
          // Timings are rewritten already, so a new recording changes only what the kernel answered.
          const timings = NORMALISATION_RULES.find((x) => x.id === 'timings')!;
          mkdirSync(RECORDED, { recursive: true });
          writeFileSync(recordedPath(r), linux.lines.map((l) => timings.apply(l, linuxSide)).join('\n') + '\n');
        }
      }
      const mine = await runIoemu(r, await buildIoemu(r.source, dir), ioemuSide.group);
      const a = normalise(linux.lines, linuxSide);
      const b = normalise(mine.lines, ioemuSide);
      compared += a.length;
      const hunks = diffLines(a, b);
      if (hunks.length === 0) {
        console.log(`${r.id}: same (${a.length} lines)`);
        continue;
      }
      const verdicts = hunks.flatMap((h) => explain(h, r.id, diffs).map((v) => ({ ...v, h })));
      const bad = verdicts.filter((v) => v.by === undefined).length;
      console.log(`${r.id}: ${verdicts.length} differing line(s) of ${a.length}, ${bad} unexplained`);
      for (const h of hunks) {
        console.log(`  @@ linux ${h.linuxAt} / ioemu ${h.ioemuAt}`);
        for (const v of explain(h, r.id, diffs)) {
          if (v.by !== undefined) used.add(v.by);
          console.log(`  ${v.side === 'linux' ? '-' : '+'} ${v.line}    [${v.by ?? 'UNEXPLAINED'}]`);
        }
      }
      unexplained += bad;
      explained += verdicts.length - bad;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${runs.length - skipped} run(s) compared (${skipped} skipped), ${compared} linux lines, ${explained} differing line(s) explained by ${used.size} entr${used.size === 1 ? 'y' : 'ies'} of docs/linux-differences.md`);
  console.log(`unexplained differences: ${unexplained}`);
  return unexplained > 0 ? 1 : 0;
}

cli(process.argv.slice(2)).then(
  (rc) => process.exit(rc),
  (e) => {
    console.error(e instanceof HarnessError ? `difftest: ${e.message}` : e);
    process.exit(2);
  },
);
