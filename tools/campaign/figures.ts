/**
 * The figures issue 9 asks of the fault-injection work, from one run
 * (`npm run campaign -- --figures`): injection points registered, fail-nth
 * steps exercised per ioctl, model-based sequences run, fuzz cases per
 * surface, and invariants violated (which must be 0). Counts are modest so
 * the run takes about a minute; IOEMU_FIGURES_SCALE multiplies them.
 */
import type { MachineKind } from '../../machines/layout.ts';
import { runFailNth, type FailNthOperation } from '../fault/fail-nth.ts';
import { iommufdMapAttach, svaBind, vfioMapDma } from '../fault/fail-nth-ops.ts';
import { fuzzAll } from '../fault/fuzz.ts';
import { checkUapiErrnos } from '../fault/fuzz-uapi.ts';
import { runSequence } from '../fault/model-based.ts';
import { INJECTION_POINTS } from '../../machines/points.ts';
import { sequenceForSeed } from './scenarios.ts';

export interface Figures {
  injectionPoints: number;
  /** Per "machine: ioctl": fail-nth steps exercised (each a run with that step failed). */
  failNthSteps: Record<string, number>;
  modelSequences: number;
  /** Per surface (uapi, iommu-regs, iommu-tables, dma-engine), both machines. */
  fuzzCases: Record<string, number>;
  /** Invariant violations, exceptions, wrong errnos and refused calls that changed state (must be 0). */
  invariantsViolated: number;
  /** What the violations were, if any. */
  problems: string[];
}

const KINDS: readonly MachineKind[] = ['virt-smmuv3', 'q35-vtd'];

export function collectFigures(scale = 1): Figures {
  const f: Figures = { injectionPoints: Object.keys(INJECTION_POINTS).length, failNthSteps: {}, modelSequences: 0, fuzzCases: {}, invariantsViolated: 0, problems: [] };
  for (const kind of KINDS) {
    const ops = [vfioMapDma(kind), iommufdMapAttach(kind), svaBind(kind)] as FailNthOperation<unknown>[];
    const ioctl = ['VFIO_IOMMU_MAP_DMA', 'IOMMU_IOAS_MAP + VFIO_DEVICE_ATTACH_IOMMUFD_PT', 'VFIO_IOMMU_BIND'];
    ops.forEach((op, i) => {
      const r = runFailNth(op);
      f.failNthSteps[`${kind}: ${ioctl[i]}`] = r.steps;
      f.invariantsViolated += r.problems.length;
      f.problems.push(...r.problems);
    });
    const n = Math.max(1, Math.round(40 * scale));
    for (let s = 1; s <= n; s++) {
      const r = runSequence(kind, sequenceForSeed(s));
      f.modelSequences++;
      if (!r.ok) {
        f.invariantsViolated++;
        f.problems.push(`${kind} model seed ${s}: command ${r.at}: ${r.failure}`);
      }
    }
    const errnos = checkUapiErrnos(kind);
    f.fuzzCases['uapi exact-errno'] = (f.fuzzCases['uapi exact-errno'] ?? 0) + errnos.cases;
    f.invariantsViolated += errnos.problems.length;
    f.problems.push(...errnos.problems);
    for (const rep of fuzzAll(kind, { seed: 1, scale: 0.25 * scale })) {
      f.fuzzCases[rep.surface] = (f.fuzzCases[rep.surface] ?? 0) + rep.cases;
      f.invariantsViolated += rep.violations;
      f.problems.push(...rep.problems);
    }
  }
  return f;
}

export function formatFigures(f: Figures): string {
  const lines = [`injection points: ${f.injectionPoints}`, 'fail-nth steps exercised per ioctl:'];
  for (const [k, v] of Object.entries(f.failNthSteps)) lines.push(`  ${k}: ${v}`);
  lines.push(`model-based sequences run: ${f.modelSequences}`, 'fuzz cases per surface:');
  for (const [k, v] of Object.entries(f.fuzzCases)) lines.push(`  ${k}: ${v}`);
  lines.push(`invariants violated: ${f.invariantsViolated}`);
  for (const p of f.problems.slice(0, 20)) lines.push(`  ${p.split('\n')[0]}`);
  return lines.join('\n');
}
