/**
 * A C program as a scenario, so `ioemu exec` gets what `ioemu run` gives a
 * TypeScript scenario from the same runner (tools/scenario/scenario.ts): the
 * machine built from kind, seed and parameters, the `--inject` plan armed
 * before the program starts, the whole trace, the machine's invariants
 * checked after the program exited, the figures a report draws.
 */
import type { Scenario } from '../scenario/scenario.ts';
import { runProgram, type ProgramOptions, type ProgramResult } from './runner.ts';

export interface ProgramScenario extends Scenario {
  /** The last run's outcome (undefined before the first run). */
  readonly result: ProgramResult | undefined;
}

/**
 * A scenario that runs `wasm` as one process: it fails when the program's
 * exit status is not 0. `machine` gives the machine's topology and options
 * (another scenario's, e.g. examples/edu/scenario.ts for QEMU's edu at 00:03.0).
 */
export function programScenario(name: string, wasm: Uint8Array | WebAssembly.Module, opts: ProgramOptions = {}, machine: Pick<Scenario, 'devices' | 'options'> = {}): ProgramScenario {
  let result: ProgramResult | undefined;
  return {
    name,
    description: `the C program ${name}`,
    ...(machine.devices !== undefined ? { devices: machine.devices } : {}),
    ...(machine.options !== undefined ? { options: machine.options } : {}),
    get result() {
      return result;
    },
    async run(ctx) {
      result = await runProgram(ctx.machine, wasm, { name, ...opts });
      ctx.metrics.set('exit_status', result.status);
      ctx.metrics.set('syscalls', result.calls);
      if (result.status !== 0) ctx.fail(`${name} exited with status ${result.status}${result.reason !== undefined ? ` (${result.reason})` : ''}`);
    },
  };
}
