/** `ioemu points`: the injection points a plan may name, with their actions, on the chosen machines. */
import { MACHINE_KINDS, machineFor, UsageError } from '../../tools/scenario/scenario.ts';
import type { MachineKind } from '../../machines/layout.ts';
import { machinesOption, parseArgs, value } from '../args.ts';
import { loadScenario } from '../load.ts';
import { EXIT, type Io } from './common.ts';

export const POINTS_HELP = `Usage: ioemu points [--scenario FILE] [--machine M]

Lists the fault-injection points a plan may name: those the machine's parts
define as they are built (the IOMMU, the host kernel, VFIO, iommufd and each
device, a scenario's own devices included), with the actions each supports
and which machines have it.

Options:
  --scenario FILE  the machine of this scenario (its topology and devices)
  --machine M      virt-smmuv3, q35-vtd, or all (default all)
`;

/** Every injection point a plan may name on the chosen machines, with what injecting there does. */
export async function cmdPoints(args: string[], io: Io): Promise<number> {
  const o = parseArgs(args, { values: ['--machine', '--scenario'] });
  if (o.flags.has('--help')) return io.out(POINTS_HELP), EXIT.OK;
  if (o.positional.length > 0) throw new UsageError(`points takes no arguments (got "${o.positional[0]}"); see "ioemu help points"`);
  const scenarioArg = value(o, '--scenario');
  const s = scenarioArg === undefined ? undefined : await loadScenario(scenarioArg);
  const machineArg = value(o, '--machine');
  const kinds = machineArg === undefined ? [...MACHINE_KINDS] : machinesOption('--machine', machineArg);
  const seen = new Map<string, { description: string; actions: readonly string[]; kinds: MachineKind[] }>();
  for (const kind of kinds) {
    for (const p of machineFor(kind, 1, {}, s).board.faults.all()) {
      const e = seen.get(p.name) ?? { description: p.description, actions: p.actions, kinds: [] };
      e.kinds.push(kind);
      seen.set(p.name, e);
    }
  }
  const names = [...seen.keys()].sort();
  io.out(`${names.length} injection points${s ? ` of scenario ${s.name}` : ''} on ${kinds.join(' and ')}; a plan rule names one in "point":\n`);
  const w = Math.max(...names.map((n) => n.length));
  for (const n of names) {
    const e = seen.get(n)!;
    const where = e.kinds.length === kinds.length ? '' : ` [${e.kinds.join(', ')} only]`;
    io.out(`  ${n.padEnd(w)}  ${e.description} (actions: ${e.actions.join(', ')})${where}\n`);
  }
  return EXIT.OK;
}
