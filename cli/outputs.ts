/**
 * Output files (--trace, --report, --out): checked for writability before
 * any work starts, so a run or a sweep never loses its results to a bad
 * path at the end; and what `ioemu run` and `ioemu exec` write after their
 * runs: one Chrome trace (a process per machine when there are several)
 * and one HTML report.
 */
import { closeSync, existsSync, openSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { renderReports } from '../tools/report/html.ts';
import { UsageError, type RunResult } from '../tools/scenario/scenario.ts';
import { mergedTrace } from '../tools/scenario/several.ts';

/**
 * Check that `path` can be written, by opening it for appending (which
 * neither truncates an existing file nor leaves a new one behind: a file
 * this check created is removed). Throws UsageError naming the option.
 */
export function checkWritable(option: string, path: string): void {
  if (path === '') throw new UsageError(`${option}: the file name is empty`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new UsageError(`${option} ${path}: is a folder, not a file`);
  const existed = existsSync(path);
  let fd: number;
  try {
    fd = openSync(path, 'a');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const dir = dirname(path);
    const why =
      code === 'ENOENT' ? (existsSync(dir) ? `files cannot be created in ${dir}` : `the folder ${dir} does not exist`)
      : code === 'ENOTDIR' ? `${dir} is not a folder`
      : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
      : code === 'EROFS' ? 'the file system is read-only'
      : (e as Error).message;
    throw new UsageError(`${option} ${path}: cannot write there (${why})`);
  }
  closeSync(fd);
  if (!existed) unlinkSync(path);
}

export interface RunOutput {
  result: RunResult;
  narrative: string[];
}

/** Write --trace and --report files; `say` gets the line naming each (undefined: silent). */
export function writeRunOutputs(runs: readonly RunOutput[], o: { trace?: string | undefined; report?: string | undefined }, say?: (line: string) => void): void {
  const results = runs.map((x) => x.result);
  if (o.trace !== undefined) {
    const text = results.length === 1 ? results[0]!.trace.stringify() : JSON.stringify(mergedTrace(results));
    writeFileSync(o.trace, text);
    const n = results.reduce((a, r) => a + r.trace.events.length, 0);
    say?.(`trace: ${n} events -> ${o.trace} (open it in https://ui.perfetto.dev${results.length > 1 ? '; one process per machine' : ''})`);
  }
  if (o.report !== undefined) {
    writeFileSync(o.report, renderReports(runs));
    say?.(`report: ${o.report} (open it in a browser)`);
  }
}
