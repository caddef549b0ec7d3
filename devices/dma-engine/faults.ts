import type { FaultInjector, InjectionPoint } from '../../src/fault/injector.ts';
import { DMA_ENGINE_INJECTION_POINTS, type DmaEnginePointName } from './points.ts';

/** One of the engine's injection points (the machine's own, so plans and failNth reach it by name). */
export type EnginePoint = InjectionPoint;

export type EnginePoints = Readonly<Record<DmaEnginePointName, EnginePoint>>;

/** The engine's injection points, looked up once in the machine's injector (src/fault/points.ts aggregates them). */
export function enginePoints(faults: FaultInjector): EnginePoints {
  const out = {} as Record<DmaEnginePointName, EnginePoint>;
  for (const name of Object.keys(DMA_ENGINE_INJECTION_POINTS) as DmaEnginePointName[]) out[name] = faults.point(name);
  return out;
}
