/**
 * Scenario parameters (`--param NAME=VALUE`): one schema per parameter, with
 * its type and range, that validates every value before a run starts and
 * feeds `ioemu list` and the help. The machine-level parameters every
 * scenario accepts are here; a scenario declares its own in `params`.
 */
import type { DmaEngineOptions } from '../../devices/dma-engine/dma-engine.ts';
import type { MachineOptions } from '../../machines/machine.ts';
import { SMMU_PRI_MODES } from '../../iommu/smmuv3/driver/driver.ts';
import { UsageError } from './usage-error.ts';

/** One parameter: what it means, its type and range, its default. */
export interface ParamSpec {
  description: string;
  /** 'integer' or 'number' (default 'number': any finite number). Ignored with `values`. */
  type?: 'integer' | 'number';
  /** A choice of words instead of a number: the value must be one of them, and reads as its index. */
  values?: readonly string[];
  /** Smallest accepted value (inclusive). */
  min?: number;
  /** Largest accepted value (inclusive). */
  max?: number;
  /** The value used when it is not given, as listings show it. */
  default?: number | string;
}

/** The name the schema of issue 19's scenarios used; the same shape. */
export type ParamDoc = ParamSpec;

/** A machine-level parameter: its schema and how it sets the machine's options. */
export interface MachineParam extends ParamSpec {
  apply(o: MachineOptions, e: DmaEngineOptions, v: number): void;
}

/**
 * Parameters every scenario accepts: they configure the machine before the
 * scenario starts (the DMA engines' options are applied to every engine).
 * Ranges are what the models accept: the ATC's capacity field, the engine's
 * page-request group limit, the PRI capability's 32-bit capacity, and enough
 * RAM for the IOMMU driver's tables and a process (16 MiB) up to 1 TiB.
 */
export const MACHINE_PARAMS: Readonly<Record<string, MachineParam>> = {
  'atc-entries': {
    description: "entries of each DMA engine's Address Translation Cache",
    type: 'integer', min: 1, max: 0xffff, default: 64,
    apply: (_o, e, v) => void (e.atcEntries = v),
  },
  'pri-capacity': {
    description: "each engine's PRI Outstanding Page Request Capacity; the IOMMU driver allocates min(64, capacity) page requests",
    type: 'integer', min: 1, max: 0xffffffff, default: 64,
    apply: (_o, e, v) => void (e.priCapacity = v),
  },
  'prg-pages': {
    description: 'largest page request group of an engine, pages',
    type: 'integer', min: 1, max: 255, default: 8,
    apply: (_o, e, v) => void (e.maxPrgPages = v),
  },
  'pri-timeout-ns': {
    description: 'virtual ns an engine waits for a page response',
    type: 'integer', min: 1, max: 1e12, default: 10_000_000,
    apply: (_o, e, v) => void (e.priTimeoutNs = v),
  },
  'iotlb-entries': {
    description: 'IOTLB entries of the IOMMU (VT-d iotlbEntries, SMMUv3 iotlbSize)',
    type: 'integer', min: 1, max: 1 << 20, default: '1024 on VT-d, 512 on SMMUv3',
    apply: (o, _e, v) => {
      o.vtd = { ...o.vtd, iotlbEntries: v };
      o.smmu = { ...o.smmu, iotlbSize: v };
    },
  },
  'smmu-pri': {
    description: "how virt-smmuv3's arm-smmu-v3 driver treats PCIe PRI: Linux 7.3 mainline (page requests logged and denied) or the posted, unmerged SMMUv3 PRI series (serviced)",
    values: SMMU_PRI_MODES, default: 'mainline',
    apply: (o, _e, v) => void (o.smmuPri = SMMU_PRI_MODES[v]!),
  },
  'ram-mib': {
    description: 'guest RAM, MiB',
    type: 'integer', min: 16, max: 1 << 20, default: 1024,
    apply: (o, _e, v) => void (o.ramBytes = v * 2 ** 20),
  },
};

/** The machine's PRNG seed, as a parameter (so `ioemu sweep --param seed=1..100` sweeps seeds). */
export const SEED_PARAM: ParamSpec = { description: "the machine's PRNG seed", type: 'integer', min: 0, max: 0xffffffff, default: 1 };

/** "an integer in 1..255", "a number >= 0": what a parameter accepts, for listings and errors. */
export function describeRange(p: ParamSpec): string {
  if (p.values !== undefined) return `one of ${p.values.join(', ')}`;
  const what = p.type === 'integer' ? 'an integer' : 'a number';
  if (p.min !== undefined && p.max !== undefined) return `${what} in ${p.min}..${p.max}`;
  if (p.min !== undefined) return `${what} >= ${p.min}`;
  if (p.max !== undefined) return `${what} <= ${p.max}`;
  return what;
}

/** "1..255" or "N": the value part of `--param NAME=...` in a listing (N where the range is long to read; the description gives it). */
export function valueHint(p: ParamSpec): string {
  if (p.values !== undefined) return p.values.join('|');
  return p.min !== undefined && p.max !== undefined && p.type === 'integer' && p.max <= 1_000_000 ? `${p.min}..${p.max}` : 'N';
}

/** One value of a parameter, checked against its schema; throws UsageError naming the parameter and the accepted range. */
export function parseParam(name: string, spec: ParamSpec, raw: string): number {
  if (spec.values !== undefined) {
    const i = spec.values.indexOf(raw.trim());
    if (i < 0) throw new UsageError(`--param ${name}=${raw}: must be ${describeRange(spec)} (${spec.description})`);
    return i;
  }
  const text = raw.trim().replace(/_/g, '');
  const n = text === '' ? NaN : Number(text);
  const ok = Number.isFinite(n) && (spec.type !== 'integer' || Number.isSafeInteger(n)) && (spec.min === undefined || n >= spec.min) && (spec.max === undefined || n <= spec.max);
  if (!ok) throw new UsageError(`--param ${name}=${raw}: must be ${describeRange(spec)} (${spec.description})`);
  return n;
}

/** The schema of every parameter a scenario accepts: its own, then the machine's. */
export function paramSchema(own: Readonly<Record<string, ParamSpec>> | undefined): Record<string, ParamSpec> {
  return { ...MACHINE_PARAMS, ...own };
}

/** Check every `--param` of a run against the schema: names and values. Returns the values as numbers. */
export function resolveParams(scenarioName: string, own: Readonly<Record<string, ParamSpec>> | undefined, raw: Readonly<Record<string, string>>): Record<string, number> {
  const schema = paramSchema(own);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) {
    const spec = schema[k];
    if (spec === undefined) throw new UsageError(`unknown parameter "${k}" for scenario ${scenarioName} (known: ${Object.keys(schema).join(', ')})`);
    out[k] = parseParam(k, spec, v);
  }
  return out;
}

/**
 * The values of a swept parameter: a comma-separated list whose items are
 * values or inclusive integer ranges `A..B` (`1..100`, `2,8,64..66`).
 * Each value is checked against the schema; throws UsageError.
 */
export function sweepValues(name: string, spec: ParamSpec, list: string): string[] {
  const out: string[] = [];
  for (const item of list.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const range = /^(-?[0-9_]+)\.\.(-?[0-9_]+)$/.exec(item);
    if (range === null) {
      parseParam(name, spec, item);
      out.push(item);
      continue;
    }
    const [a, b] = [parseParam(name, spec, range[1]!), parseParam(name, spec, range[2]!)];
    if (b < a) throw new UsageError(`--param ${name}=${item}: a range A..B needs A <= B`);
    if (b - a >= 100_000) throw new UsageError(`--param ${name}=${item}: a range holds at most 100000 values`);
    for (let v = a; v <= b; v++) out.push(String(v));
  }
  if (out.length === 0) throw new UsageError(`--param ${name}: no values (give V1,V2,... or A..B)`);
  return out;
}
