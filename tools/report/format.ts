/**
 * How the report writes numbers: virtual durations with units, times precise
 * enough to tell neighbouring events apart, addresses in hex, and trace
 * arguments as `name=value` pairs. Pure functions, shared by the HTML report,
 * the CLI summary and the playground.
 */

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A readable duration for virtual ns (3 significant digits). */
export function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(ns >= 1e7 ? 1 : 2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(ns >= 1e4 ? 1 : 2)} us`;
  return `${Math.round(ns)} ns`;
}

const UNITS: [number, string][] = [
  [1e9, 's'],
  [1e6, 'ms'],
  [1e3, 'us'],
  [1, 'ns'],
];

/**
 * A point in virtual time, in the unit of its magnitude, with as many
 * decimals as it takes to show `resolutionNs` (10.185320 ms at 1 ns; 10.19 ms
 * at 10 us): labels of ticks a few microseconds apart, late in a run, differ.
 */
export function fmtTime(ns: number, resolutionNs = 1): string {
  const a = Math.abs(ns);
  const [unit, name] = UNITS.find(([u]) => a >= u) ?? [1, 'ns'];
  const decimals = Math.max(0, Math.min(6, Math.ceil(Math.log10(unit / Math.max(1, resolutionNs)) - 1e-9)));
  return `${(ns / unit).toFixed(decimals)} ${name}`;
}

/** A short tick label for a round duration: 1 us, 20 us, 1.5 ms, 10 ms. */
export function fmtTick(ns: number): string {
  const a = Math.abs(ns);
  const [unit, name] = UNITS.find(([u]) => a >= u) ?? [1, 'ns'];
  const v = ns / unit;
  return `${Number.isInteger(v) ? v : Number(v.toPrecision(3))} ${name}`;
}

/** A rate in [0, 1] as a percentage. */
export const fmtPercent = (rate: number): string => `${(rate * 100).toFixed(rate === 1 || rate === 0 ? 0 : 1)}%`;

/**
 * Trace arguments that are addresses (or register values): written in hex.
 * Anything named like an address, an IOVA, a physical or user pointer.
 */
const HEX_ARGS = new Set(['addr', 'iova', 'srcIova', 'pa', 'vaddr', 'uptr', 'ia', 'oa', 'value', 'data', 'offset', 'info']);

/** One trace argument as the report shows it: hex for addresses, exact hex strings kept, others as JSON. */
export function fmtArg(name: string, v: unknown): string {
  if (typeof v === 'bigint') return `0x${v.toString(16)}`;
  if (typeof v === 'number' && HEX_ARGS.has(name) && Number.isSafeInteger(v) && v >= 0) return `0x${v.toString(16)}`;
  if (typeof v === 'string') return /^-?0x[0-9a-f]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** A trace event's arguments as `name=value` pairs, the way a person scans them. */
export function fmtArgs(args: Readonly<Record<string, unknown>>): string {
  return Object.entries(args)
    .map(([k, v]) => `${k}=${fmtArg(k, v)}`)
    .join(' ');
}
