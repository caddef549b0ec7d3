/**
 * The `ioemu` command line. `main(argv, io)` returns the exit status, so
 * tests run it in-process; bin/ioemu calls it with process.argv. Each
 * subcommand lives in its own file (cli/commands/, cli/campaign/command.ts).
 *
 * Exit status: 0 ok; 1 the scenario failed (a check, an invariant, an
 * exception of its own: tools/scenario/blame.ts); 2 usage error (a bad
 * option, parameter, path or plan, all found before any work starts);
 * 3 internal error (a fault inside ioemu).
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../tools/scenario/scenario.ts';
import { cmdCampaign, CAMPAIGN_HELP } from './campaign/command.ts';
import { EXIT, type Io } from './commands/common.ts';
import { cmdList, LIST_HELP } from './commands/list.ts';
import { cmdPoints, POINTS_HELP } from './commands/points.ts';
import { cmdRun, RUN_HELP } from './commands/run.ts';
import { cmdSweep, SWEEP_HELP } from './commands/sweep.ts';
import { cmdCc, CC_HELP } from './cc.ts';
import { cmdExec, EXEC_HELP } from './exec.ts';
import { ScenarioLoadError } from './load.ts';

export { EXIT, summarize, type Io } from './commands/common.ts';

const MAIN_HELP = `ioemu: run emulated PCIe/IOMMU scenarios and look at what happened.

Usage:
  ioemu run <scenario> [options]      run one scenario, print a summary
  ioemu sweep <scenario> --param name=v1,v2,... [options]
                                      run it once per value, write a CSV
  ioemu campaign <mode> [options]     fault campaigns over worker threads,
                                      sharded across machines, merged
  ioemu list                          list the scenarios in scenarios/ and the parameters
  ioemu points [--scenario FILE]      list the fault-injection points (for --inject plans)
  ioemu cc [clang options] -o prog.wasm prog.c
                                      compile a C program to run on ioemu
  ioemu exec [options] prog.wasm [args...]
                                      run it as a process of a machine
  ioemu help [command]                this text, or a command's
  ioemu --version                     the version

A <scenario> is a name in scenarios/ (e.g. "default"), or a path to a .ts
module (default export { name, description, run(ctx) }) or a .json file
(a list of steps; see tools/scenario/json-scenario.ts).

Exit status: 0 ok; 1 the scenario failed (a check, an invariant, or an
exception its own code threw, reported with its stack); 2 usage error (a bad
option, parameter, path or plan, found before any work starts); 3 internal
error (a fault inside ioemu: please report it with the command line). ioemu
exec exits with the program's own status (3 when ioemu itself failed).
`;

/** Help per command ("ioemu help run"). */
const HELP: Readonly<Record<string, string>> = {
  run: RUN_HELP,
  sweep: SWEEP_HELP,
  campaign: CAMPAIGN_HELP,
  list: LIST_HELP,
  points: POINTS_HELP,
  cc: CC_HELP,
  exec: EXEC_HELP,
  help: MAIN_HELP,
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `ioemu ${pkg.version}\n`;
}

/** The process's own output: a closed pipe (`ioemu points | head -1`) ends the command quietly. */
function processIo(): Io {
  const quietOnEpipe = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  };
  process.stdout.on('error', quietOnEpipe);
  process.stderr.on('error', quietOnEpipe);
  return {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    errIsTTY: process.stderr.isTTY === true,
    columns: process.stderr.columns ?? 80,
  };
}

export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest, io);
      case 'sweep':
        return await cmdSweep(rest, io);
      case 'campaign':
        return await cmdCampaign(rest, io);
      case 'list':
        return await cmdList(rest, io);
      case 'points':
        return await cmdPoints(rest, io);
      case 'cc':
        return await cmdCc(rest, io);
      case 'exec':
        return await cmdExec(rest, io);
      case '--version':
      case '-V':
      case 'version':
        if (rest.length > 0) throw new UsageError(`--version takes no arguments (got "${rest[0]}")`);
        io.out(version());
        return EXIT.OK;
      case undefined:
      case 'help':
      case '-h':
      case '--help': {
        if (rest.length > 1) throw new UsageError(`help takes one command at most (got "${rest.join(' ')}")`);
        const topic = rest[0];
        if (topic === undefined) return io.out(MAIN_HELP), EXIT.OK;
        const text = HELP[topic];
        if (text === undefined) throw new UsageError(`no help for "${topic}": it is not a command (commands: ${Object.keys(HELP).join(', ')})`);
        io.out(text);
        return EXIT.OK;
      }
      default:
        throw new UsageError(`unknown command "${cmd}" (commands: ${Object.keys(HELP).join(', ')}, --version)`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      const topic = cmd !== undefined && cmd in HELP && cmd !== 'help' ? ` ${cmd}` : '';
      io.err(`ioemu: ${e.message}\nTry "ioemu help${topic}".\n`);
      return EXIT.USAGE;
    }
    if (e instanceof ScenarioLoadError) {
      io.err(`ioemu: ${e.message}\n`);
      return EXIT.FAILED;
    }
    io.err(`ioemu: internal error (a fault inside ioemu: please report it with the command line): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.INTERNAL;
  }
}
