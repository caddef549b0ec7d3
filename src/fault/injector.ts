/** What an armed point makes the code do instead of its normal step. */
export type InjectionAction =
  | { kind: 'fail'; errno?: number; code?: string }
  | { kind: 'drop' }
  | { kind: 'delay'; ns: number }
  | { kind: 'corrupt'; xorLo: number; xorHi?: number };

export type InjectionActionKind = InjectionAction['kind'];
export const ALL_ACTIONS: readonly InjectionActionKind[] = Object.freeze(['fail', 'drop', 'delay', 'corrupt']);

/** How a module declares one of its points: a description, and the actions its code carries out. */
export interface InjectionPointSpec {
  readonly description: string;
  readonly actions: readonly InjectionActionKind[];
}

/**
 * A module's injection points, by name (DESIGN.md §7): each hardware block,
 * device and kernel part keeps its table beside its code and defines it on
 * the machine's injector when it is built. A bare string is a description
 * whose point takes every action.
 */
export type InjectionPointTable = Readonly<Record<string, string | InjectionPointSpec>>;

/** The points of one table on one injector, typed by the table's names (a misspelt name does not compile). */
export type DefinedPoints<T extends InjectionPointTable> = { readonly [K in keyof T]: InjectionPoint };

/** Decides, per hit, whether and how to inject; `ctx` describes the step (device, PASID, address...). */
export type InjectionHook = (hit: number, ctx: Readonly<Record<string, unknown>> | undefined) => InjectionAction | undefined;

/**
 * One named place where a fault can be injected. Code calls `check()` at the
 * step; when nothing is armed this costs a counter increment and a branch.
 */
export class InjectionPoint {
  readonly name: string;
  readonly description: string;
  readonly actions: readonly InjectionActionKind[];
  hits = 0;
  injected = 0;
  private hook: InjectionHook | undefined;
  /** Shared with the other points of one injector: hits across all of them (fail-nth counts these). */
  private readonly global: { hits: number } | undefined;

  constructor(name: string, spec: string | InjectionPointSpec, global?: { hits: number }) {
    this.name = name;
    this.description = typeof spec === 'string' ? spec : spec.description;
    this.actions = typeof spec === 'string' ? ALL_ACTIONS : Object.freeze([...spec.actions]);
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

/**
 * The injection points of one machine. It starts empty: every part of the
 * machine defines its own points on it as it is built (define), so the
 * points a machine has are exactly those of its parts, built-in or not.
 */
export class FaultInjector {
  private readonly points = new Map<string, InjectionPoint>();
  private readonly listeners = new Set<(p: InjectionPoint, a: InjectionAction, ctx: Readonly<Record<string, unknown>> | undefined) => void>();
  private readonly global = { hits: 0 };

  /**
   * Define a table of points (idempotent: a second part of the same kind,
   * such as a second DMA engine, gets the same points, and its hits count
   * on them). A name already defined with another description or other
   * actions is a programming error and throws.
   */
  define<const T extends InjectionPointTable>(table: T): DefinedPoints<T> {
    const out: Record<string, InjectionPoint> = {};
    for (const [name, spec] of Object.entries(table)) {
      if (!/^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$/.test(name)) throw new Error(`injection point "${name}": names are dotted lower-case words (owner.step)`);
      const have = this.points.get(name);
      if (have !== undefined) {
        const fresh = new InjectionPoint(name, spec);
        if (fresh.description !== have.description || fresh.actions.join() !== have.actions.join()) {
          throw new Error(`injection point "${name}" is already defined differently`);
        }
        out[name] = have;
        continue;
      }
      const p = new InjectionPoint(name, spec, this.global);
      p.onInject = (pt, a, ctx) => {
        for (const l of this.listeners) l(pt, a, ctx);
      };
      this.points.set(name, p);
      out[name] = p;
    }
    return out as DefinedPoints<T>;
  }

  /** The point of that name; throws when no part of this machine defines it (see find). */
  point(name: string): InjectionPoint {
    const p = this.points.get(name);
    if (p === undefined) throw new Error(`this machine has no injection point "${name}"`);
    return p;
  }

  /** The point of that name, or undefined when no part of this machine defines it. */
  find(name: string): InjectionPoint | undefined {
    return this.points.get(name);
  }

  has(name: string): boolean {
    return this.points.has(name);
  }

  all(): InjectionPoint[] {
    return [...this.points.values()];
  }

  /** Fail the `n`th hit (1-based) from now of one point, once: the fail-nth building block. */
  failNth(name: string, n: number, action: InjectionAction = { kind: 'fail' }): void {
    const p = this.points.get(name);
    if (p === undefined) throw new Error(`failNth: this machine has no injection point "${name}"`);
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

/**
 * Check a point whose only action is failing with an errno (kernel
 * allocation and lookup steps): the negative errno to return, or 0 to go on.
 * `fallback` is the errno the kernel's own failure would give (ENOMEM, ...).
 */
export function injectedErrno(faults: FaultInjector, name: string, fallback: number, ctx?: Readonly<Record<string, unknown>>): number {
  const a = faults.point(name).check(ctx);
  if (a === undefined || a.kind !== 'fail') return 0;
  return -Math.abs(a.errno ?? fallback);
}
