/**
 * Who is to blame for an exception that escaped a scenario: the scenario
 * (its own code, a device model of its own, an error ioemu threw at it on
 * purpose) or ioemu itself (a fault inside the emulator: exit status 3).
 *
 * The rule (docs in README.md, "Exit status"):
 * 1. A CallerError (UsageError, PlanError, VfioError, VmmError, an unknown
 *    BDF...) is ioemu telling its caller about bad input or a failed
 *    operation: the scenario's.
 * 2. Otherwise the place it was thrown decides: the first stack frame that
 *    is not Node's own or a third-party package's. In ioemu's library
 *    folders (src/, iommu/, devices/, machines/, tools/, cli/) it is a fault
 *    inside ioemu; anywhere else (scenarios/, examples/, the user's files)
 *    it is the scenario's. A thrown value that is not an Error has no stack
 *    and ioemu never throws one: the scenario's.
 */
import { CallerError } from '../../src/errors.ts';

const ROOT = new URL('../../', import.meta.url).href;
const LIBRARY = ['src', 'iommu', 'devices', 'machines', 'tools', 'cli'].map((d) => `${ROOT}${d}/`);

/** The file of a V8 stack line ("    at f (file:line:col)" or "    at file:line:col"), as a URL; undefined for Node's internals. */
function frameUrl(line: string): string | undefined {
  const m = /^\s*at (?:.*\((.*)\)|(.*))$/.exec(line);
  if (m === null) return undefined;
  const loc = (m[1] ?? m[2] ?? '').replace(/:\d+:\d+$/, '').replace(/:\d+$/, '');
  if (loc.startsWith('node:') || loc === 'native' || loc === '<anonymous>' || loc === '') return undefined;
  if (/^[a-z]+:\/\//i.test(loc)) return loc;
  return loc.startsWith('/') ? `file://${encodeURI(loc)}` : undefined;
}

/** Where `e` was thrown, as "file:line:col" (the frame that decides), or undefined. */
export function throwSite(e: unknown): string | undefined {
  if (!(e instanceof Error) || e.stack === undefined) return undefined;
  for (const line of e.stack.split('\n').slice(1)) {
    const url = frameUrl(line);
    if (url === undefined) continue;
    const inLibrary = LIBRARY.some((d) => url.startsWith(d));
    if (!inLibrary && url.includes('/node_modules/')) continue;
    return line.trim().replace(/^at /, '');
  }
  return undefined;
}

/** Was `e` a fault inside ioemu (exit 3), rather than the scenario's own failure (exit 1)? */
export function thrownInsideIoemu(e: unknown): boolean {
  if (e instanceof CallerError || !(e instanceof Error) || e.stack === undefined) return false;
  for (const line of e.stack.split('\n').slice(1)) {
    const url = frameUrl(line);
    if (url === undefined) continue;
    if (LIBRARY.some((d) => url.startsWith(d))) return true;
    if (url.includes('/node_modules/')) continue;
    return false;
  }
  return false;
}
