/** `ioemu list`: the scenarios in scenarios/ with their parameters, and the parameters every scenario accepts, from the one schema. */
import { readdirSync } from 'node:fs';
import { describeRange, MACHINE_PARAMS, SEED_PARAM, valueHint, type ParamSpec } from '../../tools/scenario/params.ts';
import { UsageError } from '../../tools/scenario/scenario.ts';
import { parseArgs } from '../args.ts';
import { loadScenario, SCENARIO_DIR } from '../load.ts';
import { EXIT, type Io } from './common.ts';

export const LIST_HELP = `Usage: ioemu list

Lists the scenarios in scenarios/ with their own parameters, then the
parameters every scenario accepts, each with its range and default.
`;

function paramLine(name: string, p: ParamSpec, indent: string): string {
  const dflt = p.default === undefined ? '' : `, default ${p.default}`;
  return `${indent}--param ${`${name}=${valueHint(p)}`.padEnd(28)} ${p.description} (${describeRange(p)}${dflt})\n`;
}

export async function cmdList(args: string[], io: Io): Promise<number> {
  const o = parseArgs(args, {});
  if (o.flags.has('--help')) return io.out(LIST_HELP), EXIT.OK;
  if (o.positional.length > 0) throw new UsageError(`list takes no arguments (got "${o.positional[0]}")`);
  io.out(`Scenarios in ${SCENARIO_DIR}:\n`);
  for (const f of readdirSync(SCENARIO_DIR).filter((f) => /\.(ts|json)$/.test(f)).sort()) {
    try {
      const s = await loadScenario(`${SCENARIO_DIR}/${f}`);
      io.out(`  ${f.replace(/\.(ts|json)$/, '').padEnd(20)} ${s.description}\n`);
      for (const [k, p] of Object.entries(s.params ?? {})) io.out(paramLine(k, p, '      '));
    } catch (e) {
      io.out(`  ${f.padEnd(20)} (cannot load: ${(e as Error).message.split('\n')[0]})\n`);
    }
  }
  io.out('\nParameters every scenario accepts (they configure the machine):\n');
  for (const [k, p] of Object.entries(MACHINE_PARAMS)) io.out(paramLine(k, p, '  '));
  io.out(paramLine('seed', SEED_PARAM, '  '));
  return EXIT.OK;
}
