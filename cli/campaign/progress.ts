/**
 * A campaign's progress on stderr: on a terminal, one live line redrawn in
 * place (a bar, runs done, rate, ETA, failures); elsewhere (CI logs) a plain
 * line now and then, so a log shows the campaign moving without a line per
 * run. A few lines of our own: a progress library would bring more than it
 * saves here.
 */
export interface ProgressStream {
  write(s: string): void;
  /** A terminal: the live line is redrawn with a carriage return. */
  isTTY?: boolean;
  /** The terminal's width, for the bar. */
  columns?: number;
}

export interface ProgressOptions {
  /** Plain mode: milliseconds between lines (default 10 s). Live mode redraws at most every 100 ms. */
  intervalMs?: number;
  /** The wall clock in ms (tests pass their own). */
  now?: () => number;
}

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class Progress {
  private done = 0;
  private failed = 0;
  private readonly t0: number;
  private last = -Infinity;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private drawn = false;

  constructor(
    private readonly total: number,
    private readonly stream: ProgressStream,
    private readonly label: string,
    o: ProgressOptions = {},
  ) {
    this.now = o.now ?? (() => Date.now());
    this.intervalMs = o.intervalMs ?? 10_000;
    this.t0 = this.now();
  }

  /** One run finished (`failed`: it broke, threw or hung). */
  tick(failed: boolean): void {
    this.done++;
    if (failed) this.failed++;
    const t = this.now();
    const every = this.stream.isTTY ? 100 : this.intervalMs;
    if (this.done === this.total || t - this.last >= every) {
      this.last = t;
      this.draw(t);
    }
  }

  /** The figures of the line: runs done of total, percent, rate (runs/s), ETA (s). */
  status(t = this.now()): string {
    const s = (t - this.t0) / 1000;
    const rate = s > 0 ? this.done / s : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const pct = this.total === 0 ? 100 : Math.floor((100 * this.done) / this.total);
    return `${this.done}/${this.total} runs (${pct}%), ${rate.toFixed(1)} runs/s, ETA ${this.done === this.total ? '0s' : fmtSeconds(eta)}, ${this.failed} failed`;
  }

  private draw(t: number): void {
    const text = `${this.label}: ${this.status(t)}`;
    if (!this.stream.isTTY) {
      this.stream.write(text + '\n');
      return;
    }
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - text.length - 4));
    const full = this.total === 0 ? width : Math.round((width * this.done) / this.total);
    this.stream.write(`\r[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${text}\x1b[K`);
    this.drawn = true;
  }

  /** End the live line (a newline) so what follows starts on its own line. */
  finish(): void {
    if (this.stream.isTTY && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
