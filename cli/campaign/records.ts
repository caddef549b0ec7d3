/**
 * A campaign's results as JSON Lines: a header naming the campaign (its spec,
 * its run count, the shard), then one record per run as it finishes, each
 * with the run's full input and outcome. Records are appended and flushed to
 * the disk one by one, so a campaign killed part-way (SIGINT, SIGTERM, a
 * node that goes away) keeps every finished run; `--resume` continues after
 * them, and `ioemu campaign merge` reads the shards back.
 */
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { CampaignSpec, RunInput, Shard } from '../../tools/campaign/campaign.ts';
import type { Outcome, ScenarioResult } from '../../tools/campaign/types.ts';
import { UsageError } from '../../tools/scenario/scenario.ts';

export const FORMAT = 1;

export interface CampaignHeader {
  type: 'campaign';
  format: typeof FORMAT;
  spec: CampaignSpec;
  /** Runs in the whole campaign (every shard). */
  runs: number;
  shard: Shard | null;
}

export interface RunRecord {
  type: 'run';
  id: number;
  input: RunInput;
  outcome: Outcome;
  detail?: string;
  injected?: Record<string, number>;
  /** Wall time of the run (not part of the summary). */
  wallMs: number;
}

export function runRecord(id: number, input: RunInput, r: ScenarioResult, wallMs: number): RunRecord {
  return {
    type: 'run', id, input, outcome: r.outcome,
    ...(r.detail !== undefined ? { detail: r.detail } : {}),
    ...(r.injected !== undefined ? { injected: r.injected } : {}),
    wallMs: Math.round(wallMs),
  };
}

export function resultOf(r: RunRecord): ScenarioResult {
  return { outcome: r.outcome, ...(r.detail !== undefined ? { detail: r.detail } : {}), ...(r.injected !== undefined ? { injected: r.injected } : {}) };
}

/** What a results file holds: its header, its run records, and the length of its complete lines. */
export interface ResultsFile {
  header: CampaignHeader;
  records: RunRecord[];
  /** Bytes up to the end of the last complete line (a line cut short by a kill is dropped). */
  complete: number;
}

const isOutcome = (x: unknown): x is Outcome => ['survived', 'errored', 'permitted', 'broken', 'exception', 'timeout'].includes(x as string);

/** Read a results file; a truncated last line (the process died while writing it) is left out. Throws UsageError for anything else wrong. */
export function readResults(path: string): ResultsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${path}: cannot read it (${(e as Error).message})`);
  }
  const end = text.lastIndexOf('\n') + 1;
  const lines = text.slice(0, end).split('\n').slice(0, -1);
  if (lines.length === 0) throw new UsageError(`${path}: not campaign results (no header line)`);
  const parse = (line: string, n: number): unknown => {
    try {
      return JSON.parse(line);
    } catch {
      throw new UsageError(`${path}:${n}: not JSON`);
    }
  };
  const header = parse(lines[0]!, 1) as CampaignHeader;
  if (header?.type !== 'campaign' || header.format !== FORMAT || typeof header.runs !== 'number') {
    throw new UsageError(`${path}: not campaign results of format ${FORMAT} (its first line is no campaign header)`);
  }
  const records = lines.slice(1).map((l, i) => {
    const r = parse(l, i + 2) as RunRecord;
    if (r?.type !== 'run' || !Number.isSafeInteger(r.id) || r.id < 0 || r.id >= header.runs || !isOutcome(r.outcome)) {
      throw new UsageError(`${path}:${i + 2}: not a run record of this campaign (ids are 0..${header.runs - 1})`);
    }
    return r;
  });
  return { header, records, complete: Buffer.byteLength(text.slice(0, end)) };
}

/** Appends records to a results file, each written and flushed to the disk before the next. */
export class ResultsWriter {
  private fd: number;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** A new file holding only `header` (the file must not exist or be empty). */
  static create(path: string, header: CampaignHeader): ResultsWriter {
    const w = new ResultsWriter(openSync(path, 'w'));
    w.write(header);
    return w;
  }

  /** Continue a file read by readResults: a cut-short last line is cut off first. */
  static resume(path: string, f: ResultsFile): ResultsWriter {
    const fd = openSync(path, 'r+');
    ftruncateSync(fd, f.complete);
    closeSync(fd);
    return new ResultsWriter(openSync(path, 'a'));
  }

  write(x: CampaignHeader | RunRecord): void {
    writeSync(this.fd, JSON.stringify(x) + '\n');
    fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Does a results file exist with something in it? */
export function hasResults(path: string): boolean {
  return existsSync(path) && readFileSync(path).length > 0;
}
