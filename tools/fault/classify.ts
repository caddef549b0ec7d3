/**
 * Telling architecturally permitted staleness from real invariant violations
 * (issue 9). IOMMUs and ATCs may keep what they fetched until software
 * invalidates it: an SMMUv3 keeps an STE or CD in its configuration cache
 * until CMD_CFGI_* (SMMUv3 §16.2), its TLB until CMD_TLBI_* (§3.17); VT-d
 * keeps context and PASID entries and IOTLB entries until the matching
 * invalidation descriptor (VT-d §6.5); a device keeps ATS translations until
 * an ATS Invalidation Request (PCIe §10.3). So when an injection corrupted
 * what the hardware fetched (a corrupted-but-valid STE stays cached) or made
 * an invalidation not happen (a dropped command, a lost ATS invalidation),
 * invariants probed through the caches may fail although nothing the
 * architecture forbids happened, and nothing is wrong in memory.
 *
 * The test: if every violation is one a stale cache can cause, and a run's
 * injections (or the scenario itself, when its driver skips an invalidation
 * on purpose) explain staleness, flush every translation cache as a full
 * invalidation would (flushTranslationCaches) and check again. Gone: the run
 * is 'permitted'. Still there, or unexplained: it is a real violation.
 */
import type { Machine } from '../../machines/machine.ts';
import { Smmuv3 } from '../../iommu/smmuv3/smmuv3.ts';
import { VtdIommu } from '../../iommu/vtd/vtd.ts';
import type { InjectionAction } from '../../src/fault/injector.ts';
import { checkInvariants, type InvariantOptions, type Violation, type ViolationKind } from './invariants.ts';
import type { InjectionPointName } from '../../machines/points.ts';

type Kind = InjectionAction['kind'];

/** Injections that can leave a cache holding what memory no longer says, and why the architecture allows it. */
export const STALENESS_EXPLAINED: Partial<Record<InjectionPointName, { actions: readonly Kind[]; why: string }>> = {
  'smmuv3.ste_fetch': { actions: ['corrupt'], why: 'a corrupted but valid STE stays in the configuration cache until CMD_CFGI_STE/CFGI_ALL' },
  'smmuv3.cd_fetch': { actions: ['corrupt'], why: 'a corrupted but valid CD stays in the configuration cache until CMD_CFGI_CD/CFGI_ALL' },
  'smmuv3.walk_read': { actions: ['corrupt'], why: 'a TLB entry built from a corrupted descriptor stays until CMD_TLBI_*' },
  'smmuv3.cmdq_process': { actions: ['fail', 'drop', 'corrupt'], why: 'an invalidation command that did not execute leaves cached configuration or TLB entries' },
  'smmuv3.ats_treq': { actions: ['corrupt'], why: 'a corrupted Translation Completion stays in the device ATC until an ATS invalidation' },
  'smmuv3.atc_inv': { actions: ['fail', 'drop'], why: 'a lost ATS Invalidation Request leaves the device ATC stale' },
  'smmuv3.atc_inv_complete': { actions: ['fail', 'drop'], why: 'the driver gives up on an ATC invalidation whose completion was lost' },
  'vtd.context_fetch': { actions: ['corrupt'], why: 'a corrupted but valid context entry stays in the context cache until a context-cache invalidation' },
  'vtd.pasid_fetch': { actions: ['corrupt'], why: 'a corrupted but valid PASID entry stays in the PASID cache until a PASID-cache invalidation' },
  'vtd.walk_read': { actions: ['corrupt'], why: 'an IOTLB entry built from a corrupted paging entry stays until an IOTLB invalidation' },
  'vtd.inv_queue_process': { actions: ['fail', 'drop', 'corrupt'], why: 'an invalidation descriptor that did not execute leaves cached entries' },
  'vtd.ats_inv_complete': { actions: ['fail', 'drop'], why: 'the driver gives up on a device-TLB invalidation whose completion was lost' },
  'dma-engine.ats.completion': { actions: ['corrupt'], why: 'a corrupted Translation Completion stays in the device ATC until an ATS invalidation' },
  'dma-engine.ats.inv-completion': { actions: ['drop'], why: 'an ATS invalidation the device never completed may leave its ATC stale' },
};

/** Violations a stale translation cache can produce; anything else (leaks, accounting, group state, exceptions) is never excused. */
const CACHE_VISIBLE: ReadonlySet<ViolationKind> = new Set(['translation', 'unmapped-translates', 'stale-iotlb']);

/**
 * Drop every cached translation and configuration on the machine, as
 * CFGI_ALL + TLBI_NSNH_ALL / TLBI_EL2_ALL (SMMUv3) or global context, PASID
 * and IOTLB invalidations (VT-d) plus an ATS invalidation of every ATC would.
 * An oracle for the classifier, applied to the models directly.
 */
export function flushTranslationCaches(m: Machine): void {
  const iommu = m.iommu as unknown;
  if (iommu instanceof Smmuv3) {
    iommu.config.invalidateAll();
    iommu.iotlb.flush();
  } else if (iommu instanceof VtdIommu) {
    iommu.contextCache.invalidateAll();
    iommu.pasidCache.invalidateAll();
    iommu.iotlb.invalidateAll();
  }
  for (const d of m.devices()) {
    const atc = (d as unknown as { atc?: { flush?: () => number } }).atc;
    atc?.flush?.();
  }
}

export interface InjectionRecord {
  point: string;
  action: Kind;
}

export type Classification =
  | { outcome: 'clean' }
  | { outcome: 'permitted'; reasons: string[]; stale: Violation[] }
  | { outcome: 'violated'; violations: Violation[] };

export interface ClassifyOptions {
  /** The scenario's driver skipped an invalidation on purpose (a stale IOTLB/ATC is then what it asked for). */
  skippedInvalidation?: string;
  invariants?: InvariantOptions;
}

/** Why the injections of a run may leave caches stale ([] when none can). */
export function stalenessReasons(injections: readonly InjectionRecord[]): string[] {
  const out = new Set<string>();
  for (const i of injections) {
    const e = STALENESS_EXPLAINED[i.point as InjectionPointName];
    if (e !== undefined && e.actions.includes(i.action)) out.add(`${i.point} ${i.action}: ${e.why}`);
  }
  return [...out];
}

/**
 * Classify `violations` found on `m`: 'clean' when there are none,
 * 'permitted' when they are all cache-visible, explained by the run's
 * injections (or a deliberate skipped invalidation) and gone once every
 * cache is flushed, else 'violated'. Flushing changes the machine's caches
 * (not its memory), so classify at the end of a run.
 */
export function classifyViolations(m: Machine, violations: readonly Violation[], injections: readonly InjectionRecord[], opts: ClassifyOptions = {}): Classification {
  if (violations.length === 0) return { outcome: 'clean' };
  const reasons = stalenessReasons(injections);
  if (opts.skippedInvalidation !== undefined) reasons.push(`the driver skipped an invalidation on purpose: ${opts.skippedInvalidation}`);
  if (reasons.length === 0 || !violations.every((v) => CACHE_VISIBLE.has(v.kind))) return { outcome: 'violated', violations: [...violations] };
  flushTranslationCaches(m);
  const after = checkInvariants(m, opts.invariants);
  if (after.length > 0) return { outcome: 'violated', violations: after };
  return { outcome: 'permitted', reasons, stale: [...violations] };
}
