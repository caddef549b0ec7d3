import type { FaultInjector, InjectionPoint } from '../fault/injector.ts';
import type { VfioInjectionPointName } from './points.ts';

type PointLookup = { point(name: string): InjectionPoint | undefined };

/**
 * Check a VFIO injection point: the errno to fail with (negative), or 0 to go
 * on. Until src/fault/points.ts gathers VFIO_INJECTION_POINTS the injector
 * has no such point and this is a no-op.
 */
export function injectedErrno(faults: FaultInjector, name: VfioInjectionPointName, fallback: number, ctx?: Record<string, unknown>): number {
  const p = (faults as unknown as PointLookup).point(name);
  if (p === undefined) return 0;
  const a = p.check(ctx);
  if (a === undefined || a.kind !== 'fail') return 0;
  return -Math.abs(a.errno ?? fallback);
}
