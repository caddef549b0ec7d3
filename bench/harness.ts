import { writeFileSync } from 'node:fs';

/** One figure of bench/results.json: `{ "<name>": { value, unit, target } }`. */
export interface Figure {
  value: number;
  unit: string;
  target: string;
}

export type Figures = Record<string, Figure>;

/** Seconds of wall time `fn` takes, best of `rounds` (the least disturbed run on a noisy machine). */
export function bestSeconds(fn: () => void, rounds = 5): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  return best;
}

export function printTable(figures: Figures): void {
  const rows = Object.entries(figures).map(([name, f]) => [name, formatValue(f.value), f.unit, f.target]);
  const header = ['figure', 'value', 'unit', 'target'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

function formatValue(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

export function writeResults(path: string, figures: Figures): void {
  writeFileSync(path, JSON.stringify(figures, null, 2) + '\n');
}
