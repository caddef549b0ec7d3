import type { FaultInjector, InjectionPoint } from '../../src/fault/injector.ts';
import { DMA_ENGINE_INJECTION_POINTS, type DmaEnginePointName } from './points.ts';

/** One of the engine's injection points (the machine's own, so plans and failNth reach it by name). */
export type EnginePoint = InjectionPoint;

export type EnginePoints = Readonly<Record<DmaEnginePointName, EnginePoint>>;

/** The engine's injection points, defined on the machine's injector (every engine of a machine shares them). */
export function enginePoints(faults: FaultInjector): EnginePoints {
  return faults.define(DMA_ENGINE_INJECTION_POINTS);
}
