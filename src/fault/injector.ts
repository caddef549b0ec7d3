import { young } from '../lib/young.ts';
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
  /**
   * The bits a `corrupt` reaches, as [low word, high word] masks applied to
   * xorLo/xorHi (a 9-bit PRG index: [0x1ff, 0]); a corruption flipping none
   * of them changes nothing and is refused. Default: all 64 bits.
   */
  readonly corruptMask?: readonly [lo: number, hi: number];
}

const ALL_BITS: readonly [number, number] = Object.freeze([0xffffffff, 0xffffffff] as [number, number]);

/**
 * A module's injection points, by name (DESIGN.md §7): each hardware block,
 * device and kernel part keeps its table beside its code and defines it on
 * the machine's injector when it is built. A bare string is a description
 * whose point takes every action.
 */
export type InjectionPointTable = Readonly<Record<string, string | InjectionPointSpec>>;

/** The points of one table on one injector, typed by the table's names (a misspelt name does not compile). */
export type DefinedPoints<T extends InjectionPointTable> = { readonly [K in keyof T]: InjectionPoint };

/**
 * Decides, per hit, whether and how to inject; `ctx` describes the step
 * (device, PASID, address...) and `can` lists the actions the code can carry
 * out at this hit (a subset of the point's actions: a site may be unable to
 * delay, say, or have nothing left to corrupt). An action outside `can` is
 * not injected.
 */
export type InjectionHook = (
  hit: number,
  ctx: Readonly<Record<string, unknown>> | undefined,
  can: readonly InjectionActionKind[],
) => InjectionAction | undefined;

/** No action possible at this hit (the step already failed on its own, say). */
export const NO_ACTIONS: readonly InjectionActionKind[] = Object.freeze([]);

/**
 * Would carrying out `a` at a point whose corruptions reach `mask` change
 * anything? A delay of 0 ns or a corruption that flips none of the bits the
 * point's code uses does not, so it is never counted as an injection.
 */
export function changesSomething(a: InjectionAction, mask: readonly [number, number] = ALL_BITS): boolean {
  if (a.kind === 'delay') return a.ns > 0;
  if (a.kind === 'corrupt') return ((a.xorLo & mask[0]) | ((a.xorHi ?? 0) & mask[1])) !== 0;
  return true;
}

/** Point names already found well formed (every machine defines the same ones again). */
const VALID_NAMES = new Set<string>();

/**
 * One named place where a fault can be injected. Code calls `check()` at the
 * step; when nothing is armed this costs a counter increment and a branch.
 *
 * An injection counts (`injected`, the `fault.inject` trace, listeners) only
 * when it changes something: the action is one the code can carry out at
 * that hit (`check`'s `can`, by default every action the point declares) and
 * it is not a no-op (see changesSomething). Otherwise check() returns
 * undefined and the step runs as normal.
 */
export class InjectionPoint {
  readonly name: string;
  readonly description: string;
  readonly actions: readonly InjectionActionKind[];
  /** The bits a `corrupt` reaches ([low, high] word masks). */
  readonly corruptMask: readonly [number, number];
  hits = 0;
  injected = 0;
  private hook: InjectionHook | undefined;
  /** Shared with the other points of one injector: hits across all of them (fail-nth counts these). */
  private readonly global: { hits: number } | undefined;

  constructor(name: string, spec: string | InjectionPointSpec, global?: { hits: number }) {
    this.name = name;
    this.description = typeof spec === 'string' ? spec : spec.description;
    this.actions = typeof spec === 'string' ? ALL_ACTIONS : Object.freeze([...spec.actions]);
    this.corruptMask = typeof spec === 'string' || spec.corruptMask === undefined ? ALL_BITS : Object.freeze([spec.corruptMask[0] >>> 0, spec.corruptMask[1] >>> 0] as [number, number]);
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

  /**
   * One hit of the step. `can` narrows the declared actions to those the
   * code carries out at this hit (a constant array: no allocation per hit);
   * returns the action to carry out, or undefined to go on as normal.
   */
  check(ctx?: Readonly<Record<string, unknown>>, can: readonly InjectionActionKind[] = this.actions): InjectionAction | undefined {
    this.hits++;
    if (this.global !== undefined) this.global.hits++;
    if (this.hook === undefined) return undefined;
    const action = this.hook(this.hits, ctx, can);
    if (action === undefined || !can.includes(action.kind) || !changesSomething(action, this.corruptMask)) return undefined;
    this.injected++;
    this.onInject?.(this, action, ctx);
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
  /** The spec each point was defined from (a second definition from the same one needs no comparison). */
  private readonly specOf = new Map<InjectionPoint, string | InjectionPointSpec>();
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
    for (const name in table) {
      const spec = table[name]!;
      if (!VALID_NAMES.has(name)) {
        if (!/^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$/.test(name)) throw new Error(`injection point "${name}": names are dotted lower-case words (owner.step)`);
        VALID_NAMES.add(name);
      }
      const have = this.points.get(name);
      if (have !== undefined) {
        // The same table again (a second part of the kind): nothing to compare.
        if (this.specOf.get(have) === spec) {
          out[name] = have;
          continue;
        }
        const fresh = new InjectionPoint(name, spec);
        if (fresh.description !== have.description || fresh.actions.join() !== have.actions.join() || fresh.corruptMask.join() !== have.corruptMask.join()) {
          throw new Error(`injection point "${name}" is already defined differently`);
        }
        out[name] = have;
        continue;
      }
      const p = new InjectionPoint(name, spec, this.global);
      p.onInject = young((pt, a, ctx) => {
        for (const l of this.listeners) l(pt, a, ctx);
      });
      this.points.set(name, p);
      this.specOf.set(p, spec);
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
   * those `filter` accepts), once: the systematic fail-nth mode. Only hits
   * that can take the action count as steps (a point that cannot fail is
   * not a step of fail-nth). Arms the selected points (replacing their
   * hooks); disarmAll() ends it. `action` picks what the chosen step does
   * (default: fail with the point's own errno).
   */
  failNthGlobal(n: number, filter: (p: InjectionPoint) => boolean = () => true, action: (p: InjectionPoint) => InjectionAction = () => ({ kind: 'fail' })): void {
    let seen = 0;
    let fired = false;
    for (const p of this.points.values()) {
      if (!filter(p)) continue;
      const a = action(p);
      if (!p.actions.includes(a.kind)) continue;
      p.arm((_hit, _ctx, can) => {
        if (fired || !can.includes(a.kind)) return undefined;
        if (++seen !== n) return undefined;
        fired = true;
        return a;
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
