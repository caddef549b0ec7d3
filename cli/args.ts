/**
 * Command-line options of the ioemu subcommands: one parser, and the
 * validators every bad value goes through, each throwing a UsageError (exit
 * status 2) that names the option, the bad value and what is accepted.
 */
import { MACHINE_KINDS, UsageError } from '../tools/scenario/scenario.ts';
import type { MachineKind } from '../machines/layout.ts';

export interface ParsedArgs {
  positional: string[];
  /** Values of value options, in order (a repeated option keeps every value). */
  values: Map<string, string[]>;
  flags: Set<string>;
}

export interface OptionSpec {
  /** Options that take a value (`--seed 7`, `--seed=7`). */
  values?: readonly string[];
  /** Options that take none (`--quiet`); -h and --help are always accepted as --help. */
  flags?: readonly string[];
  /** Options that may be given more than once (the rest may not). */
  repeatable?: readonly string[];
}

/** Parse `args` against `spec`: unknown options, missing values and repeats are UsageErrors. `--` ends the options. */
export function parseArgs(args: readonly string[], spec: OptionSpec): ParsedArgs {
  const out: ParsedArgs = { positional: [], values: new Map(), flags: new Set() };
  const values = new Set(spec.values ?? []);
  const flags = new Set([...(spec.flags ?? []), '--help']);
  const known = () => [...values, ...flags].sort().join(', ');
  for (let i = 0; i < args.length; i++) {
    let a = args[i]!;
    if (a === '--') {
      out.positional.push(...args.slice(i + 1));
      break;
    }
    if (a === '-h') a = '--help';
    let v: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      v = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (flags.has(a)) {
      if (v !== undefined) throw new UsageError(`option ${a} takes no value`);
      out.flags.add(a);
    } else if (values.has(a)) {
      if (v === undefined) {
        v = args[++i];
        if (v === undefined) throw new UsageError(`option ${a} needs a value`);
      }
      const list = out.values.get(a) ?? [];
      if (list.length > 0 && !(spec.repeatable ?? []).includes(a)) throw new UsageError(`option ${a} is given twice`);
      list.push(v);
      out.values.set(a, list);
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a} (options here: ${known()})`);
    else out.positional.push(a);
  }
  return out;
}

/** The one value of an option, or undefined. */
export function value(p: ParsedArgs, name: string): string | undefined {
  return p.values.get(name)?.[0];
}

/** `--machine`: one kind, or `all` (both kinds). */
export function machinesOption(option: string, v: string): MachineKind[] {
  if (v === 'all') return [...MACHINE_KINDS];
  if (MACHINE_KINDS.includes(v as MachineKind)) return [v as MachineKind];
  throw new UsageError(`${option} ${v}: not a machine (use ${MACHINE_KINDS.join(', ')} or all)`);
}

/** An integer option in [min, max] (underscores allowed: 1_000). */
export function intOption(option: string, v: string, min: number, max: number): number {
  const t = v.trim().replace(/_/g, '');
  const n = /^-?\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${option} ${v}: must be an integer in ${min}..${max}`);
  return n;
}

/** A comma-separated list of integers, each in [min, max]. */
export function intListOption(option: string, v: string, min: number, max: number): number[] {
  const items = v.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (items.length === 0) throw new UsageError(`${option} ${v}: give one or more integers in ${min}..${max}, comma-separated`);
  return items.map((x) => intOption(option, x, min, max));
}

const UNITS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A duration with a unit (`500us`, `20ms`, `2s`, `1m`), in ns, in [minNs, maxNs]. */
export function durationOption(option: string, v: string, minNs: number, maxNs: number): number {
  const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(v.trim());
  const ns = m === null ? NaN : Math.round(Number(m[1]) * UNITS[m[2]!]!);
  if (!(ns >= minNs && ns <= maxNs)) throw new UsageError(`${option} ${v}: must be a duration with a unit (ns, us, ms, s, m, h) from ${fmtDuration(minNs)} to ${fmtDuration(maxNs)}`);
  return ns;
}

/** A duration in ns written with the largest unit that keeps it whole. */
export function fmtDuration(ns: number): string {
  for (const u of ['h', 'm', 's', 'ms', 'us'] as const) if (ns >= UNITS[u]! && ns % UNITS[u]! === 0) return `${ns / UNITS[u]!}${u}`;
  return `${ns}ns`;
}
