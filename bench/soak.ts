import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Figures } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** The soak: 10 million DMAs and 1 million PRI-resolved faults in one machine. */
export const FULL_SOAK = { dmas: 10_000_000, faults: 1_024_000 } as const;
/**
 * What `npm run bench` runs by default: a tenth of the DMAs and of the
 * faults (the full soak takes minutes; `npm run bench -- soak-full` runs it).
 */
export const BENCH_SOAK = { dmas: 1_000_000, faults: 102_400 } as const;

/**
 * One long run in a child process (node --expose-gc, so the live heap is
 * measured after a full collection): DMAs on warm translations and PRI
 * faults on q35-vtd (its PRI servicing is on in every configuration), in
 * ten equal tenths (bench/soak-child.ts). soak.heap_growth_ratio is the
 * live heap after the last tenth over that after the first, minus 1.
 */
export function soakFigures(scale: { dmas: number; faults: number } = BENCH_SOAK, label = 'soak'): Figures {
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(here, 'soak-child.ts'), 'q35-vtd', String(scale.dmas), String(scale.faults)],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  const r = JSON.parse(out.trim().split('\n').pop()!) as { dmas: number; faults: number; faultsAnswered: number; dmaFailed: number; seconds: number; heap: number[] };
  if (r.faultsAnswered !== r.faults) throw new Error(`soak: ${r.faultsAnswered} of ${r.faults} faults answered`);
  if (r.dmaFailed !== 0) throw new Error(`soak: ${r.dmaFailed} DMAs failed`);
  const first = r.heap[0]!;
  const last = r.heap[r.heap.length - 1]!;
  const what = `${r.dmas / 1e6}M DMAs + ${r.faults} PRI faults, q35-vtd`;
  return {
    [`${label}.heap_growth_ratio`]: { value: last / first - 1, unit: 'ratio', target: `<= 0.05 (${what}; live heap after the last tenth vs the first)` },
    [`${label}.heap_first_tenth_bytes`]: { value: first, unit: 'bytes', target: `orientation (last tenth ${last}; max ${Math.max(...r.heap)})` },
    [`${label}.seconds`]: { value: r.seconds, unit: 's', target: `orientation (${what})` },
  };
}
