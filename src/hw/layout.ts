/**
 * Bit fields, declared once as data in one notation: `[name, msb, lsb?,
 * access?]`, bits numbered across the whole structure as the specifications
 * draw them (lsb defaults to msb for a single bit; the access column matters
 * to registers, see registers.ts). One notation serves registers, capability
 * registers, queue descriptors, table entries and page-table entries:
 * decoding, encoding, reserved-bit checks and pretty-printing all read the
 * same table (the idea of the kernel's FIELD_GET/GENMASK and QEMU's
 * registerfields.h, for multi-word structures). A Layout is typed by its
 * field names, so a misspelt field does not compile. Field values are
 * numbers; fields are at most 53 bits wide so they stay exact.
 *
 * Every field also carries precomputed u32 masks (its word, shift and mask
 * in that word) for hot paths: a walker tests `lo & mask` on a 64-bit entry
 * held as two u32 halves, with no BigInt and no allocation.
 */
export type FieldAccess = 'ro' | 'rw' | 'w1c' | 'wo';

/** `[name, msb, lsb?, access?]`: one field, bits numbered across the structure. */
export type FieldSpec<F extends string = string> = readonly [name: F, msb: number, lsb?: number, access?: FieldAccess];

/** A run of bits: what getBits/setBits need. */
export interface BitRange {
  readonly lsb: number;
  readonly width: number;
}

export interface BitField<F extends string = string> extends BitRange {
  readonly name: F;
  readonly msb: number;
  /** The access column, when the declaration gave one. */
  readonly access: FieldAccess | undefined;
  /** The u32 word holding `lsb` (little-endian word order). */
  readonly word: number;
  /** `lsb` within that word. */
  readonly shift: number;
  /** The field's bits in that word (the whole field unless it runs on into the next word). */
  readonly mask: number;
}

export interface Layout<F extends string = string> {
  readonly name: string;
  readonly bytes: number;
  readonly fields: Readonly<Record<F, BitField<F>>>;
  readonly order: readonly BitField<F>[];
  /** Per 32-bit word: bits inside the structure that belong to no field (RES0 unless declared otherwise). */
  readonly reservedMask: Uint32Array;
}

/** u32 mask of bits [from, to) of a word (0 <= from <= to <= 32). */
export function maskBits(from: number, to: number): number {
  if (to <= from) return 0;
  // Integer ops only (builders set fields per mapped page): bits [0, to) without bits [0, from).
  const below = to >= 32 ? 0xffffffff : ((1 << to) >>> 0) - 1;
  const skip = from <= 0 ? 0 : ((1 << from) >>> 0) - 1;
  return (below & ~skip) >>> 0;
}

/** The bits of `f` that live in u32 word `w` of the structure, as a mask (0 if none). */
export function wordMask(f: BitRange, w: number): number {
  const from = Math.max(f.lsb - 32 * w, 0);
  const to = Math.min(f.lsb + f.width - 32 * w, 32);
  return to <= 0 || from >= 32 ? 0 : maskBits(from, to);
}

/**
 * Declare a layout of `bytes` bytes (1, 2, or whole words) from field
 * declarations. Overlapping, duplicate or out-of-range fields throw.
 */
export function defineLayout<const F extends string>(name: string, bytes: number, fields: readonly FieldSpec<F>[]): Layout<F> {
  if (!(bytes === 1 || bytes === 2 || (bytes > 0 && bytes % 4 === 0))) throw new RangeError(`${name}: size must be 1, 2 or whole words`);
  const words = Math.ceil(bytes / 4);
  const used = new Uint32Array(words);
  const byName = {} as Record<F, BitField<F>>;
  const order: BitField<F>[] = [];
  for (const [fname, msb, lsbArg, access] of fields) {
    const lsb = lsbArg ?? msb;
    const width = msb - lsb + 1;
    if (width < 1 || width > 53 || lsb < 0 || msb >= bytes * 8) throw new RangeError(`${name}.${fname}: bad bits [${msb}:${lsb}]`);
    if (fname in byName) throw new Error(`${name}.${fname} declared twice`);
    for (let w = lsb >> 5; w <= msb >> 5; w++) {
      const m = wordMask({ lsb, width }, w);
      if ((used[w]! & m) !== 0) throw new Error(`${name}.${fname} overlaps another field at bit ${32 * w + 31 - Math.clz32(used[w]! & m & -(used[w]! & m))}`);
      used[w] = (used[w]! | m) >>> 0;
    }
    const shift = lsb & 31;
    const f: BitField<F> = { name: fname, lsb, msb, width, access, word: lsb >> 5, shift, mask: maskBits(shift, Math.min(32, shift + width)) };
    byName[fname] = f;
    order.push(f);
  }
  const reservedMask = new Uint32Array(words);
  for (let i = 0; i < words; i++) reservedMask[i] = (maskBits(0, Math.min(32, bytes * 8 - 32 * i)) & ~used[i]!) >>> 0;
  return { name, bytes, fields: byName, order, reservedMask };
}

/** Read a field from a structure held as u32 words (little-endian word order). */
export function getBits(words: ArrayLike<number>, f: BitRange): number {
  const off = f.lsb & 31;
  if (off + f.width <= 32) {
    // Inside one word (most fields): one shift pair, no floating point.
    return ((words[f.lsb >> 5]! << (32 - off - f.width)) >>> (32 - f.width)) >>> 0;
  }
  if (off + f.width <= 64) {
    // Across two words (a 64-bit address in a queue record or a table entry): the low word's top bits, then the next word's low ones.
    const w = f.lsb >> 5;
    const lowBits = 32 - off;
    const highBits = f.width - lowBits;
    const hi = highBits === 32 ? words[w + 1]! >>> 0 : (words[w + 1]! & ((1 << highBits) - 1)) >>> 0;
    return hi * 2 ** lowBits + (words[w]! >>> off);
  }
  let value = 0;
  let got = 0;
  let bit = f.lsb;
  while (got < f.width) {
    const w = bit >> 5;
    const off = bit & 31;
    const take = Math.min(32 - off, f.width - got);
    const chunk = take === 32 ? words[w]! >>> 0 : (words[w]! >>> off) & ((2 ** take - 1) >>> 0);
    value += chunk * 2 ** got;
    got += take;
    bit += take;
  }
  return value;
}

/** Write a field (the value is truncated to the field's width). */
export function setBits(words: Uint32Array, f: BitRange, value: number): void {
  const off = f.lsb & 31;
  if (off + f.width <= 32 && value >= 0 && value <= 0xffffffff && Number.isInteger(value)) {
    // Inside one word, a u32 value: the low `width` bits, in place.
    const mask = ((0xffffffff >>> (32 - f.width)) << off) >>> 0;
    const w = f.lsb >> 5;
    words[w] = ((words[w]! & ~mask) | ((value << off) & mask)) >>> 0;
    return;
  }
  let v = Math.floor(value) % 2 ** f.width;
  if (v < 0) v += 2 ** f.width;
  let put = 0;
  let bit = f.lsb;
  while (put < f.width) {
    const w = bit >> 5;
    const off = bit & 31;
    const take = Math.min(32 - off, f.width - put);
    const chunk = v % 2 ** take;
    v = Math.floor(v / 2 ** take);
    const mask = take === 32 ? 0xffffffff : (((2 ** take - 1) << off) >>> 0);
    words[w] = ((words[w]! & ~mask) | ((chunk << off) & mask)) >>> 0;
    put += take;
    bit += take;
  }
}

/** What typed field access needs of a layout: its fields by name (any Layout with at least these fields). */
export interface FieldTable<F extends string> {
  readonly fields: Readonly<Record<F, BitRange>>;
}

/** Field `name` of a structure (typed: a misspelt name, or a field the layout lacks, does not compile). */
export function readField<F extends string>(layout: FieldTable<F>, words: ArrayLike<number>, name: NoInfer<F>): number {
  return getBits(words, layout.fields[name]);
}

/** Set field `name` of a structure in place. */
export function writeField<F extends string>(layout: FieldTable<F>, words: Uint32Array, name: NoInfer<F>, value: number): void {
  setBits(words, layout.fields[name], value);
}

/**
 * FIELD_GET for a value held in one number (a 32-bit register, or the word
 * of a structure that holds the field): the field must lie in one word.
 */
export function fieldGet(f: BitField, value: number): number {
  return ((value & f.mask) >>> f.shift) >>> 0;
}

/** FIELD_PREP: `value` in the field's place within its word (bits beyond the field dropped). */
export function fieldPrep(f: BitField, value: number): number {
  return ((value << f.shift) & f.mask) >>> 0;
}

/** Every field's mask in its word, by name: what a driver ORs together (fields must not cross a word). */
export function fieldMasks<F extends string>(layout: Layout<F>): Readonly<Record<F, number>> {
  const out = {} as Record<F, number>;
  for (const f of layout.order) {
    if (f.shift + f.width > 32) throw new RangeError(`${layout.name}.${f.name} crosses a word: no single mask`);
    out[f.name] = f.mask;
  }
  return Object.freeze(out);
}

/** All fields as a plain object. */
export function decodeLayout<F extends string>(layout: Layout<F>, words: ArrayLike<number>): Record<F, number> {
  const out = {} as Record<F, number>;
  for (const f of layout.order) out[f.name] = getBits(words, f);
  return out;
}

/** A structure from field values (fields not given are 0). */
export function encodeLayout<F extends string>(layout: Layout<F>, values: Partial<Record<F, number>>): Uint32Array {
  const words = new Uint32Array(Math.ceil(layout.bytes / 4));
  // for-in, not Object.entries: drivers encode a command or record per page fault.
  for (const k in values) {
    const v = values[k];
    if (v === undefined) continue;
    const f = layout.fields[k];
    if (f === undefined) throw new Error(`${layout.name} has no field ${k}`);
    setBits(words, f, v);
  }
  return words;
}

/**
 * Bit numbers that are set but belong to no field (reserved, RES0), lowest
 * first, at most `limit` of them; empty when the structure is clean. Fields
 * a model treats as reserved in some configuration are checked by the model.
 */
export function reservedBitsSet(layout: Layout, words: ArrayLike<number>, limit = 8): number[] {
  const out: number[] = [];
  for (let w = 0; w < layout.reservedMask.length && out.length < limit; w++) {
    let bad = (words[w]! & layout.reservedMask[w]!) >>> 0;
    while (bad !== 0 && out.length < limit) {
      const b = 31 - Math.clz32(bad & -bad);
      out.push(w * 32 + b);
      bad = (bad & ~(1 << b)) >>> 0;
    }
  }
  return out;
}

/** True when a set bit belongs to no field (the allocation-free check; reservedBitsSet lists them). */
export function hasReservedBits(layout: Layout, words: ArrayLike<number>): boolean {
  const m = layout.reservedMask;
  for (let i = 0; i < m.length; i++) if (((words[i]! & m[i]!) >>> 0) !== 0) return true;
  return false;
}

/** Read a structure's words from memory through a u32 reader. */
export function readWords(read32: (addr: number) => number, addr: number, bytes: number, into?: Uint32Array): Uint32Array {
  const words = into ?? new Uint32Array(bytes / 4);
  for (let i = 0; i < bytes / 4; i++) words[i] = read32(addr + 4 * i);
  return words;
}

/** "STE{V=1 Config=5 S1ContextPtr=0x4000...}" with only non-zero fields, for traces. */
export function formatLayout(layout: Layout, words: ArrayLike<number>): string {
  const parts: string[] = [];
  for (const f of layout.order) {
    const v = getBits(words, f);
    if (v !== 0) parts.push(`${f.name}=${f.width > 4 ? '0x' + v.toString(16) : v}`);
  }
  const rsv = reservedBitsSet(layout, words, 4);
  if (rsv.length > 0) parts.push(`RES0!bits=${rsv.join(',')}`);
  return `${layout.name}{${parts.join(' ')}}`;
}

/* ---- 64-bit entries as two u32 halves (page-table entries: the walkers' hot path) ---- */

/** A mutable 64-bit entry: `lo` = bits 31:0, `hi` = bits 63:32 (the builders' scratch pair). */
export interface U64Halves {
  lo: number;
  hi: number;
}

/** Bits of `f` in the low half of a 64-bit entry, as a u32 mask (0 if none). */
export function loMask(f: BitRange): number {
  return wordMask(f, 0);
}

/** Bits of `f` in the high half of a 64-bit entry, as a u32 mask (0 if none). */
export function hiMask(f: BitRange): number {
  return wordMask(f, 1);
}

/** Field `f` of a 64-bit entry held as halves (exact up to 53 bits wide). */
export function getBits64(lo: number, hi: number, f: BitRange): number {
  const end = f.lsb + f.width;
  if (f.lsb >= 32) return ((hi & hiMask(f)) >>> 0) / 2 ** (f.lsb - 32);
  if (end <= 32) return ((lo & loMask(f)) >>> 0) / 2 ** f.lsb;
  const low = ((lo & loMask(f)) >>> 0) / 2 ** f.lsb;
  return low + ((hi & hiMask(f)) >>> 0) * 2 ** (32 - f.lsb);
}

/** Set field `f` of `d` to `value` (which must fit). */
export function setBits64(d: U64Halves, f: BitRange, value: number): void {
  const shifted = value * 2 ** f.lsb; // exact below 2^53 + lsb shifts of a power of two
  const loPart = f.lsb >= 32 ? 0 : shifted % 0x1_0000_0000;
  const hiPart = f.lsb >= 32 ? value * 2 ** (f.lsb - 32) : Math.floor(shifted / 0x1_0000_0000);
  const lm = loMask(f);
  const hm = hiMask(f);
  d.lo = ((d.lo & ~lm) | (loPart & lm)) >>> 0;
  d.hi = ((d.hi & ~hm) | (hiPart & hm)) >>> 0;
}
