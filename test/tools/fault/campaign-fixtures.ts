/** Scenarios that misbehave on purpose, for the campaign runner's own test. */
import type { ScenarioResult } from '../../../tools/campaign/types.ts';

export function misbehave(input: string): ScenarioResult {
  if (input === 'throw') throw new Error('boom');
  if (input === 'hang') for (;;);
  return { outcome: 'survived' };
}

/** What a worker runs this module as: its own URL, a module it imports on demand, and where a stack trace says it is. */
export async function whereAmI(): Promise<ScenarioResult> {
  const { createMachine } = await import('../../../machines/machine.ts');
  const engine = createMachine('q35-vtd').device('0000:00:01.0');
  return { outcome: 'survived', detail: JSON.stringify({ url: import.meta.url, engine: engine?.constructor.name, frame: new Error('here').stack?.split('\n')[1]?.trim() }) };
}
