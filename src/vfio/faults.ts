import { injectedErrno as checkErrno, type FaultInjector } from '../fault/injector.ts';
import type { VfioInjectionPointName } from './points.ts';

/** Check a VFIO injection point: the errno to fail with (negative), or 0 to go on. */
export function injectedErrno(faults: FaultInjector, name: VfioInjectionPointName, fallback: number, ctx?: Record<string, unknown>): number {
  return checkErrno(faults, name, fallback, ctx);
}
