/**
 * Binary layouts of in-memory descriptors (SMMUv3 STEs, CDs, commands and
 * event records; VT-d root/context/PASID entries and queue descriptors),
 * declared once as data: a field is a bit range [msb:lsb] numbered across the
 * whole descriptor, as the specifications number them. Decoding, encoding,
 * reserved-bit checks and pretty-printing all read the same table (the idea
 * of the kernel's FIELD_GET/GENMASK, but for multi-word structures). Field
 * values are numbers; fields are at most 53 bits wide so they stay exact.
 */
export interface BitField {
  readonly name: string;
  readonly lsb: number;
  readonly width: number;
}

export interface Layout<F extends string = string> {
  readonly name: string;
  readonly bytes: number;
  readonly fields: Readonly<Record<F, BitField>>;
  readonly order: readonly BitField[];
  /** Per 32-bit word: bits that belong to no field (RES0 unless declared otherwise). */
  readonly reservedMask: Uint32Array;
}

/** Declare a layout from `[name, msb, lsb]` triples (lsb defaults to msb for single bits). */
export function defineLayout<const F extends string>(
  name: string,
  bytes: number,
  fields: readonly (readonly [F, number, number?])[],
): Layout<F> {
  if (bytes % 4 !== 0) throw new RangeError(`${name}: size must be whole words`);
  const words = bytes / 4;
  const used = new Uint32Array(words);
  const byName = {} as Record<F, BitField>;
  const order: BitField[] = [];
  for (const [fname, msb, lsbArg] of fields) {
    const lsb = lsbArg ?? msb;
    const width = msb - lsb + 1;
    if (width < 1 || width > 53 || msb >= bytes * 8) throw new RangeError(`${name}.${fname}: bad bits [${msb}:${lsb}]`);
    if (fname in byName) throw new Error(`${name}.${fname} declared twice`);
    for (let b = lsb; b <= msb; b++) {
      const w = b >> 5;
      const m = (1 << (b & 31)) >>> 0;
      if (used[w]! & m) throw new Error(`${name}.${fname} overlaps another field at bit ${b}`);
      used[w] = (used[w]! | m) >>> 0;
    }
    const f: BitField = { name: fname, lsb, width };
    byName[fname] = f;
    order.push(f);
  }
  const reservedMask = new Uint32Array(words);
  for (let i = 0; i < words; i++) reservedMask[i] = ~used[i]! >>> 0;
  return { name, bytes, fields: byName, order, reservedMask };
}

/** Read a field from a descriptor held as u32 words (little-endian word order). */
export function getBits(words: ArrayLike<number>, f: BitField): number {
  const off = f.lsb & 31;
  if (off + f.width <= 32) {
    // Inside one word (most fields): one shift pair, no floating point.
    return ((words[f.lsb >> 5]! << (32 - off - f.width)) >>> (32 - f.width)) >>> 0;
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
export function setBits(words: Uint32Array, f: BitField, value: number): void {
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

/** All fields as a plain object. */
export function decodeLayout<F extends string>(layout: Layout<F>, words: ArrayLike<number>): Record<F, number> {
  const out = {} as Record<F, number>;
  for (const f of layout.order) out[f.name as F] = getBits(words, f);
  return out;
}

/** A descriptor from field values (fields not given are 0). */
export function encodeLayout<F extends string>(layout: Layout<F>, values: Partial<Record<F, number>>): Uint32Array {
  const words = new Uint32Array(layout.bytes / 4);
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
 * first, at most `limit` of them; empty when the descriptor is clean. Fields
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

/** Read a descriptor's words from memory through a u32 reader. */
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
