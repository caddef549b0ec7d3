/**
 * Fault plans (DESIGN.md §7): a JSON-serialisable description of where
 * (a named injection point), when (nth / every nth / after / times /
 * probability from the machine's seeded PRNG / a predicate on the context the
 * point passes) and what (fail, drop, delay, corrupt) to inject.
 *
 * ```json
 * { "seed": 7, "rules": [
 *   { "point": "smmuv3.walk_read", "when": { "nth": 2, "match": { "device": "0000:00:01.0" } }, "action": { "kind": "fail" } },
 *   { "point": "host.page_alloc", "when": { "probability": 0.1, "times": 3 }, "action": { "kind": "fail", "errno": "ENOMEM" } } ] }
 * ```
 *
 * Semantics of `when`, per rule, counting only the hits whose context passes
 * `match` and where the code can carry out the rule's action (a hit that could
 * not take it is not the rule's), from the moment the plan is applied (hit 1
 * is the first such hit):
 * - `after`: the first `after` matching hits are never injected;
 * - `nth`: only matching hit number `nth` is injected;
 * - `every`: only hits `after + every`, `after + 2*every`, ... are injected;
 * - `probability`: an eligible hit is injected with this chance, drawn from a
 *   stream forked off the machine's seeded PRNG (so the same machine seed and
 *   plan replay byte for byte, and other models' random numbers do not shift);
 * - `times`: at most this many injections by the rule (default 1 with `nth`,
 *   unlimited otherwise).
 * All given conditions must hold. With no `when` every hit is injected.
 * A rule with `optional: true` may name a point the machine lacks (it is then
 * skipped and its stats say `absent`); otherwise such a point is an error.
 * When several rules name one point the first rule (in plan order) that
 * decides to inject wins; every rule still counts the hits it matches.
 *
 * `match` compares with the context object the point passes to `check()`:
 * - `device`: a BDF ('0000:00:01.0'), a device name ('dma0') or a requester
 *   ID (number); compared with the context's `dev`, `sid`, `rid` or
 *   `requesterId` (points name devices in different ways; applyPlan on a
 *   machine resolves a BDF or name to all of them). A point whose context
 *   names no device never matches a rule with `device`.
 * - `pasid`: equal to the context's `pasid`.
 * - `addrFrom` / `addrTo`: the half-open range [addrFrom, addrTo) holding the
 *   context's `addr` (or `iova`, or `vaddr`). Numbers, or strings in decimal
 *   or 0x hex for values past 2^53.
 */
import { CallerError } from '../errors.ts';
import * as ERRNO from '../uapi/errno.ts';
import { Prng } from '../sim/prng.ts';
import { changesSomething, type FaultInjector, type InjectionAction } from './injector.ts';

export interface PlanMatch {
  device?: string | number;
  pasid?: number;
  addrFrom?: number | string;
  addrTo?: number | string;
}

export interface PlanWhen {
  nth?: number;
  every?: number;
  probability?: number;
  after?: number;
  times?: number;
  match?: PlanMatch;
}

/** As InjectionAction, but `errno` may also be a Linux name ('ENOMEM') in JSON. */
export type PlanAction =
  | { kind: 'fail'; errno?: number | string; code?: string }
  | { kind: 'drop' }
  | { kind: 'delay'; ns: number }
  | { kind: 'corrupt'; xorLo: number; xorHi?: number };

export interface PlanRule {
  /** An injection point of the machine (`ioemu points`). */
  point: string;
  /**
   * The rule may name a point the machine does not have (a plan written for
   * both machines naming one IOMMU's point): on such a machine it is skipped
   * and reported as absent. Without it, a missing point is an error.
   */
  optional?: boolean;
  when?: PlanWhen;
  action: PlanAction;
}

export interface FaultPlan {
  seed?: number;
  rules: PlanRule[];
}

/** A plan that did not validate; `errors` lists every problem, each with its JSON path. */
export class PlanError extends CallerError {
  constructor(readonly errors: string[]) {
    super(`invalid fault plan:\n  ${errors.join('\n  ')}`);
    this.name = 'PlanError';
  }
}

const ERRNO_NAMES: Record<string, number> = Object.fromEntries(
  Object.entries(ERRNO).filter(([k, v]) => /^E[A-Z0-9]+$/.test(k) && typeof v === 'number') as [string, number][],
);

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isNat = (x: unknown, min = 0): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= min;

function parseAddr(x: unknown): bigint | undefined {
  if (typeof x === 'number') return Number.isSafeInteger(x) && x >= 0 ? BigInt(x) : undefined;
  if (typeof x === 'string' && /^(0x[0-9a-f_]+|[0-9_]+)$/i.test(x.trim())) {
    try {
      return BigInt(x.trim().replace(/_/g, ''));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], path: string, errors: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) errors.push(`${path}: unknown field "${k}" (allowed: ${allowed.join(', ')})`);
}

/**
 * Validate a parsed plan: the plan (typed) or every problem found. With
 * `points` (the names a machine or catalog knows) a rule naming another point
 * is a problem too; without, names are checked when the plan is applied.
 */
export function validatePlan(x: unknown, points?: readonly string[]): { ok: true; plan: FaultPlan } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  if (!isObj(x)) return { ok: false, errors: ['plan: must be an object { seed?, rules: [...] }'] };
  checkKeys(x, ['seed', 'rules'], 'plan', errors);
  if (x.seed !== undefined && !(isNat(x.seed) && x.seed <= 0xffffffff)) errors.push('plan.seed: must be an integer in [0, 2^32)');
  if (!Array.isArray(x.rules)) {
    errors.push('plan.rules: must be an array of rules');
    return { ok: false, errors };
  }
  const known = points === undefined ? undefined : new Set(points);
  x.rules.forEach((r: unknown, i: number) => {
    const at = `rules[${i}]`;
    if (!isObj(r)) {
      errors.push(`${at}: must be an object { point, when?, action }`);
      return;
    }
    checkKeys(r, ['point', 'optional', 'when', 'action'], at, errors);
    if (r.optional !== undefined && typeof r.optional !== 'boolean') errors.push(`${at}.optional: must be true or false`);
    if (typeof r.point !== 'string') errors.push(`${at}.point: must be a string naming an injection point`);
    else if (known !== undefined && !known.has(r.point) && r.optional !== true) {
      errors.push(`${at}.point: unknown injection point "${r.point}" (add "optional": true to skip it where it is absent); valid points: ${[...known].join(', ')}`);
    }
    if (r.when !== undefined) {
      if (!isObj(r.when)) errors.push(`${at}.when: must be an object`);
      else {
        const w = r.when;
        checkKeys(w, ['nth', 'every', 'probability', 'after', 'times', 'match'], `${at}.when`, errors);
        if (w.nth !== undefined && !isNat(w.nth, 1)) errors.push(`${at}.when.nth: must be an integer >= 1`);
        if (w.every !== undefined && !isNat(w.every, 1)) errors.push(`${at}.when.every: must be an integer >= 1`);
        if (w.after !== undefined && !isNat(w.after)) errors.push(`${at}.when.after: must be an integer >= 0`);
        if (w.times !== undefined && !isNat(w.times, 1)) errors.push(`${at}.when.times: must be an integer >= 1`);
        if (w.probability !== undefined && !(typeof w.probability === 'number' && w.probability >= 0 && w.probability <= 1)) {
          errors.push(`${at}.when.probability: must be a number in [0, 1]`);
        }
        if (w.nth !== undefined && w.every !== undefined) errors.push(`${at}.when: nth and every cannot be combined`);
        if (w.match !== undefined) {
          if (!isObj(w.match)) errors.push(`${at}.when.match: must be an object`);
          else {
            const m = w.match;
            checkKeys(m, ['device', 'pasid', 'addrFrom', 'addrTo'], `${at}.when.match`, errors);
            if (m.device !== undefined && typeof m.device !== 'string' && !isNat(m.device)) {
              errors.push(`${at}.when.match.device: must be a BDF or device name (string) or a requester ID (integer)`);
            }
            if (m.pasid !== undefined && !isNat(m.pasid)) errors.push(`${at}.when.match.pasid: must be an integer >= 0`);
            const from = m.addrFrom === undefined ? 0n : parseAddr(m.addrFrom);
            const to = m.addrTo === undefined ? 1n << 64n : parseAddr(m.addrTo);
            if (from === undefined) errors.push(`${at}.when.match.addrFrom: must be an address (integer, or a decimal/0x string)`);
            if (to === undefined) errors.push(`${at}.when.match.addrTo: must be an address (integer, or a decimal/0x string)`);
            if (from !== undefined && to !== undefined && from >= to) errors.push(`${at}.when.match: addrFrom must be below addrTo (the range is [addrFrom, addrTo))`);
          }
        }
      }
    }
    validateAction(r.action, `${at}.action`, errors);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, plan: x as unknown as FaultPlan };
}

function validateAction(a: unknown, at: string, errors: string[]): void {
  if (!isObj(a)) {
    errors.push(`${at}: must be an object { kind: 'fail' | 'drop' | 'delay' | 'corrupt', ... }`);
    return;
  }
  switch (a.kind) {
    case 'fail':
      checkKeys(a, ['kind', 'errno', 'code'], at, errors);
      if (a.errno !== undefined) {
        if (typeof a.errno === 'string') {
          if (!(a.errno in ERRNO_NAMES)) errors.push(`${at}.errno: unknown errno name "${a.errno}" (known: ${Object.keys(ERRNO_NAMES).join(', ')})`);
        } else if (!(typeof a.errno === 'number' && Number.isInteger(a.errno) && a.errno !== 0 && Math.abs(a.errno) < 4096)) {
          errors.push(`${at}.errno: must be a Linux errno (1..4095, sign ignored) or its name`);
        }
      }
      if (a.code !== undefined && typeof a.code !== 'string') errors.push(`${at}.code: must be a string (an architectural error name)`);
      break;
    case 'drop':
      checkKeys(a, ['kind'], at, errors);
      break;
    case 'delay':
      checkKeys(a, ['kind', 'ns'], at, errors);
      // A delay of 0 ns would change nothing: it is refused rather than reported as injected.
      if (!isNat(a.ns, 1)) errors.push(`${at}.ns: must be an integer >= 1 (virtual nanoseconds)`);
      break;
    case 'corrupt': {
      checkKeys(a, ['kind', 'xorLo', 'xorHi'], at, errors);
      const lo = isNat(a.xorLo) && a.xorLo <= 0xffffffff;
      const hi = a.xorHi === undefined || (isNat(a.xorHi) && a.xorHi <= 0xffffffff);
      if (!lo) errors.push(`${at}.xorLo: must be a u32 (0..0xffffffff)`);
      if (!hi) errors.push(`${at}.xorHi: must be a u32 (0..0xffffffff)`);
      if (lo && hi && a.xorLo === 0 && (a.xorHi ?? 0) === 0) errors.push(`${at}: xorLo and xorHi are both 0, so nothing would be corrupted (flip at least one bit)`);
      break;
    }
    default:
      errors.push(`${at}.kind: must be one of 'fail', 'drop', 'delay', 'corrupt' (got ${JSON.stringify(a.kind)})`);
  }
}

/** A validated plan from a parsed value; throws PlanError listing every problem. */
export function parsePlan(x: unknown, points?: readonly string[]): FaultPlan {
  const v = validatePlan(x, points);
  if (!v.ok) throw new PlanError(v.errors);
  return v.plan;
}

/** A validated plan from JSON text; throws PlanError (bad JSON or bad plan). */
export function loadPlan(text: string, points?: readonly string[]): FaultPlan {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (e) {
    throw new PlanError([`plan: not JSON (${(e as Error).message})`]);
  }
  return parsePlan(x, points);
}

/** The InjectionAction a plan action stands for (errno names resolved, sign normalised to positive). */
export function toInjectionAction(a: PlanAction): InjectionAction {
  switch (a.kind) {
    case 'fail': {
      const out: { kind: 'fail'; errno?: number; code?: string } = { kind: 'fail' };
      if (a.errno !== undefined) out.errno = typeof a.errno === 'string' ? ERRNO_NAMES[a.errno]! : Math.abs(a.errno);
      if (a.code !== undefined) out.code = a.code;
      return out;
    }
    case 'drop':
      return { kind: 'drop' };
    case 'delay':
      return { kind: 'delay', ns: a.ns };
    case 'corrupt':
      return a.xorHi === undefined ? { kind: 'corrupt', xorLo: a.xorLo } : { kind: 'corrupt', xorLo: a.xorLo, xorHi: a.xorHi };
  }
}

/** What a rule did so far. */
export interface RuleStats {
  rule: PlanRule;
  /** The machine has no such point and the rule is optional: it is skipped. */
  absent: boolean;
  /** Hits that passed `match` and could take the rule's action. */
  matched: number;
  /** Injections the rule made (each changed the step it hit). */
  injected: number;
}

/** An applied plan: its per-rule figures, and disarm() to take it off the machine. */
export interface AppliedPlan {
  readonly rules: readonly RuleStats[];
  disarm(): void;
}

type Ctx = Readonly<Record<string, unknown>> | undefined;

/** Identifiers that stand for one device in points' contexts. */
type DeviceKeys = Set<string | number>;

function ctxAddr(ctx: Ctx): bigint | undefined {
  if (ctx === undefined) return undefined;
  for (const k of ['addr', 'iova', 'vaddr']) {
    const v = ctx[k];
    if (typeof v === 'bigint') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return BigInt(Math.trunc(v));
  }
  return undefined;
}

function makeMatcher(m: PlanMatch | undefined, devKeys: DeviceKeys | undefined): (ctx: Ctx) => boolean {
  if (m === undefined) return () => true;
  const from = m.addrFrom === undefined ? undefined : parseAddr(m.addrFrom)!;
  const to = m.addrTo === undefined ? undefined : parseAddr(m.addrTo)!;
  const keys = devKeys;
  return (ctx) => {
    if (keys !== undefined) {
      if (ctx === undefined) return false;
      let hit = false;
      for (const k of ['dev', 'sid', 'rid', 'requesterId']) {
        const v = ctx[k];
        if ((typeof v === 'string' || typeof v === 'number') && keys.has(v)) hit = true;
      }
      if (!hit) return false;
    }
    if (m.pasid !== undefined && ctx?.pasid !== m.pasid) return false;
    if (from !== undefined || to !== undefined) {
      const a = ctxAddr(ctx);
      if (a === undefined) return false;
      if (from !== undefined && a < from) return false;
      if (to !== undefined && a >= to) return false;
    }
    return true;
  };
}

/** What applyPlan needs of a machine (machines/machine.ts): its injector and PRNG, and its devices to resolve names. */
export interface PlanMachine {
  readonly board: { readonly faults: FaultInjector; readonly prng: Prng };
  devices(): readonly { readonly bdf: string; readonly name: string; readonly requesterId: number }[];
}

function deviceKeys(device: string | number, machine: PlanMachine | undefined): DeviceKeys {
  const keys: DeviceKeys = new Set([device]);
  if (machine === undefined) return keys;
  for (const fn of machine.devices()) {
    if (fn.bdf === device || fn.name === device || fn.requesterId === device) {
      keys.add(fn.bdf);
      keys.add(fn.name);
      keys.add(fn.requesterId);
    }
  }
  return keys;
}

function isMachine(x: PlanMachine | FaultInjector): x is PlanMachine {
  return (x as PlanMachine).board !== undefined;
}

/**
 * Arm the points a plan names (validating it first, against the points the
 * machine has and the actions each supports; throws PlanError). On a
 * machine, probability draws come from `machine.board.prng.fork('fault.plan/<seed>')`
 * and device names/BDFs are resolved; with a bare injector pass the PRNG.
 * Arming replaces whatever hook a named point had; disarm() disarms them.
 */
export function applyPlan(target: PlanMachine | FaultInjector, plan: FaultPlan | unknown, prng?: Prng): AppliedPlan {
  const machine = isMachine(target) ? target : undefined;
  const faults = machine !== undefined ? machine.board.faults : (target as FaultInjector);
  const p = parsePlan(plan, faults.all().map((pt) => pt.name));
  const unsupported: string[] = [];
  p.rules.forEach((r, i) => {
    const pt = faults.find(r.point);
    if (pt === undefined) return;
    if (!pt.actions.includes(r.action.kind)) {
      unsupported.push(`rules[${i}].action.kind: "${r.point}" cannot ${r.action.kind} (it supports: ${pt.actions.join(', ')})`);
    } else if (!changesSomething(toInjectionAction(r.action), pt.corruptMask)) {
      const [lo, hi] = pt.corruptMask.map((x) => `0x${x.toString(16)}`);
      unsupported.push(`rules[${i}].action: "${r.point}" corrupts only the bits xorLo & ${lo}, xorHi & ${hi}; these values flip none of them`);
    }
  });
  if (unsupported.length > 0) throw new PlanError(unsupported);
  const base = prng ?? machine?.board.prng ?? new Prng(p.seed ?? 1);
  const rng = base.fork(`fault.plan/${p.seed ?? 0}`);
  const stats: RuleStats[] = p.rules.map((rule) => ({ rule, absent: !faults.has(rule.point), matched: 0, injected: 0 }));
  const byPoint = new Map<string, { st: RuleStats; match: (ctx: Ctx) => boolean; action: InjectionAction }[]>();
  for (const st of stats) {
    if (st.absent) continue;
    const w = st.rule.when;
    const dev = w?.match?.device;
    const entry = { st, match: makeMatcher(w?.match, dev === undefined ? undefined : deviceKeys(dev, machine)), action: toInjectionAction(st.rule.action) };
    const list = byPoint.get(st.rule.point) ?? [];
    list.push(entry);
    byPoint.set(st.rule.point, list);
  }
  for (const [name, entries] of byPoint) {
    faults.point(name).arm((_hit, ctx, can) => {
      let chosen: InjectionAction | undefined;
      for (const { st, match, action } of entries) {
        // A hit where the code cannot carry out this rule's action is not one of its hits.
        if (!can.includes(action.kind) || !match(ctx)) continue;
        const n = ++st.matched;
        if (chosen !== undefined) continue;
        const w = st.rule.when ?? {};
        const after = w.after ?? 0;
        const times = w.times ?? (w.nth !== undefined ? 1 : Infinity);
        if (st.injected >= times || n <= after) continue;
        if (w.nth !== undefined && n !== w.nth) continue;
        if (w.every !== undefined && (n - after) % w.every !== 0) continue;
        if (w.probability !== undefined && !(rng.float() < w.probability)) continue;
        st.injected++;
        chosen = action;
      }
      return chosen;
    });
  }
  return {
    rules: stats,
    disarm() {
      for (const name of byPoint.keys()) faults.point(name).disarm();
    },
  };
}
