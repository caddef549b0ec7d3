import { readFileSync } from 'node:fs';
import { loadPlan, type FaultPlan } from '../src/fault/plan.ts';

/** Read and validate a fault plan from a JSON file (Node only); throws PlanError naming the file. */
export function readPlanFile(path: string): FaultPlan {
  const text = readFileSync(path, 'utf8');
  try {
    return loadPlan(text);
  } catch (e) {
    if (e instanceof Error) e.message = `${path}: ${e.message}`;
    throw e;
  }
}
