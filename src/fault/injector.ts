import { INJECTION_POINTS, type InjectionPointName } from './points.ts';

/** What an armed point makes the code do instead of its normal step. */
export type InjectionAction =
  | { kind: 'fail'; errno?: number; code?: string }
  | { kind: 'drop' }
  | { kind: 'delay'; ns: number }
  | { kind: 'corrupt'; xorLo: number; xorHi?: number };

/** Decides, per hit, whether and how to inject; `ctx` describes the step (device, PASID, address...). */
export type InjectionHook = (hit: number, ctx: Readonly<Record<string, unknown>> | undefined) => InjectionAction | undefined;

/**
 * One named place where a fault can be injected. Code calls `check()` at the
 * step; when nothing is armed this costs a counter increment and a branch.
 */
export class InjectionPoint {
  readonly name: InjectionPointName;
  readonly description: string;
  hits = 0;
  injected = 0;
  private hook: InjectionHook | undefined;
  /** Shared with the other points of one injector: hits across all of them (fail-nth counts these). */
  private readonly global: { hits: number } | undefined;

  constructor(name: InjectionPointName, global?: { hits: number }) {
    this.name = name;
    this.description = INJECTION_POINTS[name];
    this.global = global;
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
    if (this.global !== undefined) this.global.hits++;
    if (this.hook === undefined) return undefined;
    const action = this.hook(this.hits, ctx);
    if (action !== undefined) {
      this.injected++;
      this.onInject?.(this, action, ctx);
    }
    return action;
  }

  /** Set by the injector so every injection leaves a trace. */
  onInject: ((p: InjectionPoint, a: InjectionAction, ctx: Readonly<Record<string, unknown>> | undefined) => void) | undefined;
}

/** The injection points of one machine. */
export class FaultInjector {
  private readonly points = new Map<InjectionPointName, InjectionPoint>();
  private readonly listeners = new Set<(p: InjectionPoint, a: InjectionAction, ctx: Readonly<Record<string, unknown>> | undefined) => void>();
  private readonly global = { hits: 0 };

  constructor() {
    for (const name of Object.keys(INJECTION_POINTS) as InjectionPointName[]) {
      const p = new InjectionPoint(name, this.global);
      p.onInject = (pt, a, ctx) => {
        for (const l of this.listeners) l(pt, a, ctx);
      };
      this.points.set(name, p);
    }
  }

  point(name: InjectionPointName): InjectionPoint {
    return this.points.get(name)!;
  }

  all(): InjectionPoint[] {
    return [...this.points.values()];
  }

  /** Fail the `n`th hit (1-based) from now of one point, once: the fail-nth building block. */
  failNth(name: InjectionPointName, n: number, action: InjectionAction = { kind: 'fail' }): void {
    const p = this.point(name);
    const target = p.hits + n;
    p.arm((hit) => (hit === target ? action : undefined));
  }

  /** Hits of every point of this injector since it was made (armed or not). */
  get totalHits(): number {
    return this.global.hits;
  }

  /** Injections made so far by every point. */
  get totalInjected(): number {
    let n = 0;
    for (const p of this.points.values()) n += p.injected;
    return n;
  }

  /**
   * Fail the `n`th hit (1-based) from now counted across every point (or
   * those `filter` accepts), once: the systematic fail-nth mode. Arms the
   * selected points (replacing their hooks); disarmAll() ends it. `action`
   * picks what the chosen step does (default: fail with the point's own errno).
   */
  failNthGlobal(n: number, filter: (p: InjectionPoint) => boolean = () => true, action: (p: InjectionPoint) => InjectionAction = () => ({ kind: 'fail' })): void {
    const selected = [...this.points.values()].filter(filter);
    let seen = 0;
    let fired = false;
    for (const p of selected) {
      p.arm(() => {
        if (fired) return undefined;
        if (++seen !== n) return undefined;
        fired = true;
        return action(p);
      });
    }
  }

  disarmAll(): void {
    for (const p of this.points.values()) p.disarm();
  }

  onInjection(fn: (p: InjectionPoint, a: InjectionAction, ctx: Readonly<Record<string, unknown>> | undefined) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
