import type { FaultInjector, InjectionAction, InjectionHook } from '../../src/fault/injector.ts';
import type { Tracer } from '../../src/trace/tracer.ts';
import { DMA_ENGINE_INJECTION_POINTS, type DmaEnginePointName } from './points.ts';

/** What the engine needs of an injection point (src/fault/injector.ts's InjectionPoint has this shape). */
export interface EnginePoint {
  readonly name: string;
  readonly description: string;
  hits: number;
  injected: number;
  readonly armed: boolean;
  arm(hook: InjectionHook): void;
  disarm(): void;
  check(ctx?: Readonly<Record<string, unknown>>): InjectionAction | undefined;
}

/**
 * A point kept by the device itself, used until the machine's FaultInjector
 * knows the DMA engine's points (until src/fault/points.ts aggregates
 * DMA_ENGINE_INJECTION_POINTS). It traces its injections as the injector does.
 */
class LocalPoint implements EnginePoint {
  hits = 0;
  injected = 0;
  private hook: InjectionHook | undefined;

  constructor(
    readonly name: DmaEnginePointName,
    private readonly tracer: Tracer,
  ) {}

  get description(): string {
    return DMA_ENGINE_INJECTION_POINTS[this.name];
  }

  get armed(): boolean {
    return this.hook !== undefined;
  }

  arm(hook: InjectionHook): void {
    this.hook = hook;
  }

  disarm(): void {
    this.hook = undefined;
  }

  check(ctx?: Readonly<Record<string, unknown>>): InjectionAction | undefined {
    this.hits++;
    if (this.hook === undefined) return undefined;
    const action = this.hook(this.hits, ctx);
    if (action !== undefined) {
      this.injected++;
      this.tracer.trace('fault.inject', this.name, { point: this.name, action: action.kind, ctx: ctx === undefined ? '' : JSON.stringify(ctx) });
    }
    return action;
  }
}

export type EnginePoints = Readonly<Record<DmaEnginePointName, EnginePoint>>;

/**
 * The engine's injection points: the machine's own when its injector has
 * them (plans and failNth then reach them by name), otherwise points local
 * to this device (reach them through `device.points`).
 */
export function enginePoints(faults: FaultInjector, tracer: Tracer): EnginePoints {
  const shared = new Map<string, EnginePoint>();
  for (const p of faults.all()) shared.set(p.name, p);
  const out = {} as Record<DmaEnginePointName, EnginePoint>;
  for (const name of Object.keys(DMA_ENGINE_INJECTION_POINTS) as DmaEnginePointName[]) {
    out[name] = shared.get(name) ?? new LocalPoint(name, tracer);
  }
  return out;
}
