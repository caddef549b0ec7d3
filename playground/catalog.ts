/**
 * What a visitor of the playground can run: the built-in scenarios (the
 * default one, the JSON ones in scenarios/) and the two example devices'
 * scenarios, each with the fault plans that go with it.
 */
import defaultScenario, { DEFAULT_PLAN } from '../scenarios/default.ts';
import svaRingJson from '../scenarios/sva-ring.json' with { type: 'json' };
import eduScenario from '../examples/edu/scenario.ts';
import eduPlan from '../examples/edu/plan.json' with { type: 'json' };
import checksumScenario from '../examples/checksum/scenario.ts';
import checksumPlan from '../examples/checksum/plan.json' with { type: 'json' };
import { parseJsonScenario } from '../tools/scenario/json-scenario.ts';
import type { Scenario } from '../tools/scenario/scenario.ts';

export interface CatalogEntry {
  /** The name the CLI knows it by (a name in scenarios/ or a path). */
  id: string;
  scenario: Scenario;
  /** Fault plans offered as starting points, by label. */
  plans: Record<string, unknown>;
}

export const CATALOG: readonly CatalogEntry[] = [
  { id: 'default', scenario: defaultScenario, plans: { 'its built-in plan, as an explicit plan': DEFAULT_PLAN } },
  { id: 'sva-ring', scenario: parseJsonScenario(svaRingJson, 'scenarios/sva-ring.json'), plans: {} },
  { id: 'examples/edu/scenario.ts', scenario: eduScenario, plans: { 'examples/edu/plan.json': eduPlan } },
  { id: 'examples/checksum/scenario.ts', scenario: checksumScenario, plans: { 'examples/checksum/plan.json': checksumPlan } },
];

export function catalogEntry(id: string): CatalogEntry | undefined {
  return CATALOG.find((e) => e.id === id);
}
