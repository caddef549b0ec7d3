/**
 * Descriptor layouts as data. A 64-bit descriptor travels as two u32 halves
 * (`lo` = bits 31:0, `hi` = bits 63:32) so walks never touch BigInt; a field
 * is a bit range of the whole 64-bit value. Decoding for traces, reserved-bit
 * masks and tests read the same tables the walkers take their masks from.
 */

export interface Field {
  readonly name: string;
  /** Least significant bit in the 64-bit descriptor. */
  readonly lsb: number;
  readonly width: number;
  readonly doc: string;
}

export type Layout = Readonly<Record<string, Field>>;

const TWO_32 = 0x1_0000_0000;

/** Declare a layout: `{ AF: [10, 1, 'access flag'], ... }` becomes named fields. */
export function defineLayout<K extends string>(
  spec: Record<K, readonly [lsb: number, width: number, doc: string]>,
): Readonly<Record<K, Field>> {
  const out = {} as Record<K, Field>;
  for (const name of Object.keys(spec) as K[]) {
    const [lsb, width, doc] = spec[name];
    if (lsb < 0 || width < 1 || lsb + width > 64 || width > 52) {
      throw new RangeError(`bad field ${name}: [${lsb}, ${width}]`);
    }
    out[name] = Object.freeze({ name, lsb, width, doc });
  }
  return Object.freeze(out);
}

/** Bits of `f` that live in the low half, as a u32 mask (0 if none). */
export function loMask(f: Field): number {
  if (f.lsb >= 32) return 0;
  const top = Math.min(32, f.lsb + f.width);
  return maskBits(f.lsb, top);
}

/** Bits of `f` that live in the high half, as a u32 mask (0 if none). */
export function hiMask(f: Field): number {
  if (f.lsb + f.width <= 32) return 0;
  return maskBits(Math.max(0, f.lsb - 32), f.lsb + f.width - 32);
}

/** u32 mask of bits [from, to). */
export function maskBits(from: number, to: number): number {
  if (to <= from) return 0;
  // Integer ops only (builders set fields per mapped page): bits [0, to) without bits [0, from).
  const below = to >= 32 ? 0xffffffff : ((1 << to) >>> 0) - 1;
  const skip = from <= 0 ? 0 : ((1 << from) >>> 0) - 1;
  return (below & ~skip) >>> 0;
}

/** Value of `f` in the descriptor (exact up to 52 bits wide). */
export function getField(lo: number, hi: number, f: Field): number {
  const end = f.lsb + f.width;
  if (f.lsb >= 32) return ((hi & hiMask(f)) >>> 0) / 2 ** (f.lsb - 32);
  if (end <= 32) return ((lo & loMask(f)) >>> 0) / 2 ** f.lsb;
  const low = ((lo & loMask(f)) >>> 0) / 2 ** f.lsb;
  return low + ((hi & hiMask(f)) >>> 0) * 2 ** (32 - f.lsb);
}

/** A mutable descriptor, the builders' scratch pair. */
export interface Desc {
  lo: number;
  hi: number;
}

/** Set `f` to `value` (which must fit) in `d`. */
export function setField(d: Desc, f: Field, value: number): void {
  const shifted = value * 2 ** f.lsb; // exact below 2^53 + lsb shifts of a power of two
  const loPart = f.lsb >= 32 ? 0 : shifted % TWO_32;
  const hiPart = f.lsb >= 32 ? value * 2 ** (f.lsb - 32) : Math.floor(shifted / TWO_32);
  d.lo = ((d.lo & ~loMask(f)) | (loPart & loMask(f))) >>> 0;
  d.hi = ((d.hi & ~hiMask(f)) | (hiPart & hiMask(f))) >>> 0;
}

/** "NAME=value" for every non-zero field, for traces and test messages. */
export function describeDesc(lo: number, hi: number, layout: Layout): string {
  const parts: string[] = [];
  for (const f of Object.values(layout)) {
    const v = getField(lo, hi, f);
    if (v !== 0) parts.push(f.width === 1 ? f.name : `${f.name}=0x${v.toString(16)}`);
  }
  return parts.join(' ');
}
