/**
 * What `ioemu run` and `ioemu exec` write after their runs: one Chrome trace
 * (a process per machine when there are several) and one HTML report.
 */
import { writeFileSync } from 'node:fs';
import { renderReports } from '../tools/report/html.ts';
import type { RunResult } from '../tools/scenario/scenario.ts';
import { mergedTrace } from '../tools/scenario/several.ts';

export interface RunOutput {
  result: RunResult;
  narrative: string[];
}

/** Write --trace and --report files; `say` gets the line naming each (undefined: silent). */
export function writeRunOutputs(runs: readonly RunOutput[], o: { trace?: string; report?: string }, say?: (line: string) => void): void {
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
