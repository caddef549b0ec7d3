/**
 * `ioemu exec`: run a compiled C program (`ioemu cc`) as a process of a
 * fresh machine, through the scenario runner (tools/cprog/scenario.ts), so
 * fault plans, traces, reports and invariants apply as to `ioemu run`. The
 * program's stdout and stderr pass through; ioemu's own lines go to stderr.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { FaultPlan } from '../src/fault/plan.ts';
import { formatViolations } from '../tools/fault/invariants.ts';
import { loadModule, ProgramLoadError } from '../tools/cprog/runner.ts';
import { programScenario } from '../tools/cprog/scenario.ts';
import { MACHINE_KINDS, runScenario, UsageError } from '../tools/scenario/scenario.ts';
import type { MachineKind } from '../machines/layout.ts';
import { checkPlanOn, EXIT, internalErrorLines, readPlanOption, thrownLines } from './commands/common.ts';
import { loadScenario } from './load.ts';
import { checkWritable, writeRunOutputs, type RunOutput } from './outputs.ts';

export const EXEC_HELP = `Usage: ioemu exec [options] prog.wasm [args...]

Runs prog.wasm (built with "ioemu cc") as one process of a fresh machine:
its arguments and environment, stdin/stdout/stderr passed through, its
memory the process's memory. Options come before prog.wasm; everything
after it is the program's.

Options:
  --machine M        virt-smmuv3, q35-vtd, or all (each machine in turn)
                     (default q35-vtd)
  --seed N           the machine's PRNG seed (default 1)
  --inject PLAN      arm a fault plan (JSON, see docs/fault-plans.md) before it starts
  --trace FILE       write the Chrome trace (every system call of the program
                     is a proc.syscall event on its process's track)
  --report FILE      write the HTML report
  --scenario FILE    build the machine that scenario declares (its devices and
                     options), e.g. examples/edu/scenario.ts for QEMU's edu at 00:03.0
  --param NAME=V     a machine parameter, as for "ioemu run" (see "ioemu list")
  --memlock BYTES    the process's RLIMIT_MEMLOCK (default: unlimited)
  --env NAME=VALUE   set an environment variable of the program (repeatable)
  --quiet            no ioemu lines on stderr
  -h, --help         this text

Exit status: the program's own. 2 for bad input, found before the program
starts (an option, a path, a plan, a file that is not a module built with
"ioemu cc"); 3 when ioemu itself failed (an internal error, or the kernel's
invariants broke after the program exited). A program that waits for
something that can never happen (a blocking read with no event left) ends
with 124.
`;

interface ExecOpts {
  machines: MachineKind[];
  seed?: number;
  plan?: FaultPlan;
  trace?: string;
  report?: string;
  scenario?: string;
  params: Record<string, string>;
  memlock: number;
  env: Record<string, string>;
  quiet: boolean;
}

function parse(args: string[]): { o: ExecOpts; program: string; progArgs: string[] } | 'help' {
  const o: ExecOpts = { machines: ['q35-vtd'], params: {}, memlock: Infinity, env: {}, quiet: false };
  let i = 0;
  const value = (name: string): string => {
    const v = args[++i];
    if (v === undefined) throw new UsageError(`option ${name} needs a value`);
    return v;
  };
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) break;
    switch (a) {
      case '-h':
      case '--help':
        return 'help';
      case '--quiet':
        o.quiet = true;
        break;
      case '--machine': {
        const v = value(a);
        if (v === 'all') o.machines = [...MACHINE_KINDS];
        else if (MACHINE_KINDS.includes(v as MachineKind)) o.machines = [v as MachineKind];
        else throw new UsageError(`--machine: "${v}" is not a machine (use ${MACHINE_KINDS.join(', ')} or all)`);
        break;
      }
      case '--seed': {
        const v = value(a);
        const n = Number(v);
        if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new UsageError(`--seed: "${v}" is not an integer in [0, 2^32)`);
        o.seed = n;
        break;
      }
      case '--inject':
        o.plan = readPlanOption(a, value(a));
        break;
      case '--trace':
        o.trace = value(a);
        checkWritable(a, o.trace);
        break;
      case '--report':
        o.report = value(a);
        checkWritable(a, o.report);
        break;
      case '--scenario':
        o.scenario = value(a);
        break;
      case '--param':
      case '--env': {
        const v = value(a);
        const k = v.indexOf('=');
        if (k <= 0) throw new UsageError(`${a}: "${v}" is not NAME=VALUE`);
        (a === '--param' ? o.params : o.env)[v.slice(0, k)] = v.slice(k + 1);
        break;
      }
      case '--memlock': {
        const v = value(a);
        const n = v === 'unlimited' ? Infinity : Number(v);
        if (!(n >= 0)) throw new UsageError(`--memlock: "${v}" is not a byte count or "unlimited"`);
        o.memlock = n;
        break;
      }
      default:
        throw new UsageError(`unknown option ${a} (options go before the program)`);
    }
  }
  const program = args[i];
  if (program === undefined) throw new UsageError('exec needs a program (a .wasm file built with "ioemu cc")');
  return { o, program, progArgs: args.slice(i + 1) };
}

export async function cmdExec(args: string[], io: { out(s: string): void; err(s: string): void }): Promise<number> {
  const p = parse(args);
  if (p === 'help') return io.out(EXEC_HELP), 0;
  const { o, program, progArgs } = p;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(program));
  } catch (e) {
    throw new UsageError(`cannot read ${program} (${(e as Error).message})`);
  }
  const say = (line: string) => {
    if (!o.quiet) io.err(`ioemu: ${line}\n`);
  };
  let module: WebAssembly.Module;
  try {
    module = await loadModule(bytes);
  } catch (e) {
    throw e instanceof ProgramLoadError ? new UsageError(`${program}: ${e.message}`) : e;
  }
  const machineOf = o.scenario === undefined ? {} : await loadScenario(o.scenario);
  const programs = o.machines.map((machine) => {
    // Streaming decoders: a UTF-8 character split across two writes is not mangled.
    const outText = new TextDecoder();
    const errText = new TextDecoder();
    const s = programScenario(basename(program), module, {
      args: progArgs,
      env: o.env,
      stdout: (b) => io.out(outText.decode(b, { stream: true })),
      stderr: (b) => io.err(errText.decode(b, { stream: true })),
      spawn: { memlockLimit: o.memlock },
    }, machineOf);
    return { machine, s };
  });
  if (o.plan !== undefined) checkPlanOn('--inject', o.plan, o.machines, programs[0]!.s, o.params);
  const runs: RunOutput[] = [];
  let status = 0;
  let broken = false;
  for (const { machine, s } of programs) {
    const r = await runScenario(s, { machine, params: o.params, ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.plan ? { plan: o.plan } : {}) });
    runs.push({ result: r, narrative: [] });
    const ended = s.result;
    if (ended === undefined) {
      // The program never ran to its end: its module could not be instantiated, or something threw.
      const e = r.thrown?.error;
      if (e instanceof ProgramLoadError) throw new UsageError(`${program}: ${e.message}`);
      io.err(r.failures.map((f) => `ioemu: ${program} on ${machine}: ${f}\n`).join('') + thrownLines(r).join('\n') + '\n');
      if (r.thrown?.insideIoemu) broken = true;
      else if (status === 0) status = EXIT.FAILED;
      continue;
    }
    if (o.machines.length > 1 || ended.reason !== undefined || ended.status !== 0) {
      say(`${program} on ${machine}: exit status ${ended.status}${ended.reason !== undefined ? ` (${ended.reason})` : ''}, ${ended.calls} system calls, ${r.virtualNs} ns of virtual time`);
    }
    if (r.violations.length > 0) {
      broken = true;
      io.err(`ioemu: after ${program} exited on ${machine}, the kernel's invariants broke (an ioemu bug):\n${formatViolations(r.violations)}\n`);
    }
    for (const pl of r.plans) for (const st of pl.rules) say(`fault plan: ${st.rule.point} -> ${st.rule.action.kind}: ` + (st.absent ? `not on ${machine} (optional rule, skipped)` : `${st.matched} matching hit(s), ${st.injected} injected`));
    if (status === 0) status = ended.status;
  }
  writeRunOutputs(runs, o, say);
  io.err(internalErrorLines(runs.map((x) => x.result)));
  return broken ? EXIT.INTERNAL : status;
}
