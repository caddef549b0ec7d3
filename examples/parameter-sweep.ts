/**
 * A parameter sweep from code: the default scenario run once per ATC size,
 * with the figures a sweep CSV has (the CLI does the same with
 *   npx tsx bin/ioemu sweep default --param atc-entries=1,4,16,64 --out sweep.csv).
 * Run: npx tsx examples/parameter-sweep.ts
 */
import scenario from '../scenarios/default.ts';
import {
  runScenario,
  summaryRow,
} from '../src/index.ts';

export async function runSweepExample(values = [1, 4, 16, 64], say: (s: string) => void = console.log): Promise<Record<string, string | number>[]> {
  const rows: Record<string, string | number>[] = [];
  say('atc-entries  ok  atc-hit-rate  iotlb-hit-rate  pf-mean-ns  desc-mean-ns');
  for (const atc of values) {
    const r = await runScenario(scenario, { params: { 'atc-entries': String(atc), pages: '8' } });
    const row: Record<string, string | number> = { 'atc-entries': atc, ...summaryRow(r) };
    rows.push(row);
    say(`${String(atc).padStart(11)}  ${row.ok ? 'ok' : '--'}  ${String(row.atc_hit_rate).padStart(12)}  ${String(row.iotlb_hit_rate).padStart(14)}  ${String(row.iopf_mean_ns).padStart(10)}  ${String(row.desc_mean_ns).padStart(12)}`);
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) await runSweepExample();
