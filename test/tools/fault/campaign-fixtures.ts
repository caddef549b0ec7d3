/** Scenarios that misbehave on purpose, for the campaign runner's own test. */
import type { ScenarioResult } from '../../../tools/campaign/types.ts';

export function misbehave(input: string): ScenarioResult {
  if (input === 'throw') throw new Error('boom');
  if (input === 'hang') for (;;);
  return { outcome: 'survived' };
}
