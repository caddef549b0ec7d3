import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseJsonScenario } from '../tools/scenario/json-scenario.ts';
import { isScenario, UsageError, type Scenario } from '../tools/scenario/scenario.ts';

/**
 * A scenario module that failed to load: a syntax error, a type the
 * transpiler rejects, an exception at import. The scenario's own failure
 * (exit status 1), reported with its stack.
 */
export class ScenarioLoadError extends Error {
  override name = 'ScenarioLoadError';
  constructor(
    readonly scenario: string,
    override readonly cause: unknown,
  ) {
    super(`scenario ${scenario} failed to load: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
  }
}

/** The repository's scenarios/ folder. */
export const SCENARIO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'scenarios');

/** Where a scenario argument points: a path (with an extension) or a name in scenarios/. */
export function resolveScenario(arg: string): string {
  if (extname(arg) === '' && !arg.includes('/')) {
    for (const ext of ['.ts', '.json']) {
      const p = join(SCENARIO_DIR, arg + ext);
      if (existsSync(p)) return p;
    }
    throw new UsageError(`no scenario named "${arg}" in ${SCENARIO_DIR} (give a path to a .ts or .json file)`);
  }
  const p = resolve(arg);
  if (!existsSync(p)) throw new UsageError(`scenario file not found: ${arg}`);
  return p;
}

/** Load a scenario: a module whose default export is a Scenario, or a JSON description. */
export async function loadScenario(arg: string): Promise<Scenario> {
  const path = resolveScenario(arg);
  if (extname(path) === '.json') {
    let x: unknown;
    try {
      x = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new UsageError(`${arg}: not JSON (${(e as Error).message})`);
    }
    return parseJsonScenario(x, arg);
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_REQUIRE_CYCLE_MODULE' || code === 'ERR_REQUIRE_ESM') {
      throw new UsageError(`${arg}: cannot be loaded as an ES module: its folder has no package.json with "type": "module" (add one, or name the file .mts)`);
    }
    throw new ScenarioLoadError(arg, e);
  }
  if (!isScenario(mod.default)) throw new UsageError(`${arg}: the module's default export is not a scenario ({ name, description, run(ctx) })`);
  return mod.default;
}
