import { writeFileSync } from 'node:fs';
import type { ChromeTraceSink } from '../src/trace/chrome-trace.ts';

/** Write a collected trace as Chrome trace-event JSON (open it in ui.perfetto.dev or chrome://tracing). */
export function writeChromeTrace(sink: ChromeTraceSink, path: string): number {
  const text = sink.stringify();
  writeFileSync(path, text);
  return text.length;
}
