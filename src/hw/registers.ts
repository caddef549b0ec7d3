/**
 * A block's registers as one table, the shared "header" of its model and its
 * driver (DESIGN.md §1): each register has a name, an offset, a size and its
 * fields in the bit-field notation of layout.ts, `[name, msb, lsb?,
 * access?]`, bits numbered within the register as the specification draws
 * it. From the one table come the RegisterFile a model serves MMIO from
 * (access types drive read-only, RW1C and write-only behaviour), a Layout
 * per register (exact decode/encode/format, 64-bit registers included) and
 * the masks and packed values a driver writes. Names are typed per
 * register: a misspelt register or field does not compile.
 */
import {
  defineLayout, encodeLayout, fieldGet, fieldMasks, getBits, maskBits, type BitField, type FieldAccess, type FieldSpec, type Layout,
} from './layout.ts';

export interface RegisterSpec<N extends string = string, F extends string = string> {
  readonly name: N;
  readonly offset: number;
  /** 2 for 16-bit configuration-space registers; a RegisterFile serves 4- and 8-byte ones. */
  readonly size: 2 | 4 | 8;
  /** Bits in no field are reserved (read 0, writes ignored). A register without fields is wholly `access`. */
  readonly fields?: readonly FieldSpec<F>[];
  /** Access of the fields that do not give their own (default 'rw'). */
  readonly access?: FieldAccess;
  /** Reset value: a number, or [low word, high word] for 64-bit registers. */
  readonly reset?: number | readonly [number, number];
}

/** Register name → the union of its field names. */
export type RegMap = { readonly [reg: string]: string };
export type RegName<M extends RegMap> = keyof M & string;

type FieldsOf<S> = S extends { readonly fields: readonly (readonly [infer F extends string, ...unknown[]])[] } ? F : never;
/** The RegMap of a union of register specs. */
export type RegMapOf<S extends RegisterSpec> = { readonly [R in S as R['name']]: FieldsOf<R> };

/** The RegMap of a RegisterTable value (`TableRegMap<typeof SOME_REGS>`). */
export type TableRegMap<T> = T extends RegisterTable<infer M> ? M : never;

export type RegisterValues<M extends RegMap, R extends RegName<M>> = Partial<Record<M[R], number>>;

/** A register's fields with lsb and access resolved, their Layout, and per word the bits each access type covers. */
export interface ResolvedRegister {
  readonly size: number;
  readonly dflt: FieldAccess;
  readonly fields: (readonly [string, number, number, FieldAccess])[];
  readonly layout: Layout;
  /** Per word of the register (low first): bits software may write (rw, wo), write-1-to-clear bits, write-only bits. */
  readonly masks: { readonly writable: readonly number[]; readonly w1c: readonly number[]; readonly writeOnly: readonly number[] };
}

/**
 * Resolved once per field table, register name, size and default access:
 * every machine declares the same tables again (a campaign builds one per
 * run), and derived tables (withResets, with) share their registers' field
 * tables.
 */
const resolvedCache = new WeakMap<readonly FieldSpec[], Map<string, ResolvedRegister[]>>();
const NO_FIELDS: readonly FieldSpec[] = [];

export function resolveRegister(spec: { readonly name: string; readonly size: number; readonly fields?: readonly FieldSpec[] | undefined }, dflt: FieldAccess): ResolvedRegister {
  const table = spec.fields ?? NO_FIELDS;
  let byName = resolvedCache.get(table);
  if (byName === undefined) resolvedCache.set(table, (byName = new Map()));
  // By name, then size and default access (a short list): no key string built per register declared.
  let list = byName.get(spec.name);
  if (list === undefined) byName.set(spec.name, (list = []));
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    if (r.size === spec.size && r.dflt === dflt) return r;
  }
  const fields = table.map(([name, msb, lsb, access]) => [name, msb, lsb ?? msb, access ?? dflt] as const);
  const words = Math.max(1, Math.ceil(spec.size / 4));
  const writable = new Array<number>(words).fill(0);
  const w1c = new Array<number>(words).fill(0);
  const writeOnly = new Array<number>(words).fill(0);
  // A register without fields is one field of its whole width.
  const ranges = fields.length > 0 ? fields.map(([, msb, lsb, access]) => ({ lsb, width: msb - lsb + 1, access })) : [{ lsb: 0, width: spec.size * 8, access: dflt }];
  for (const { lsb, width, access } of ranges) {
    for (let w = lsb >> 5; w <= (lsb + width - 1) >> 5 && w < words; w++) {
      const m = maskBits(Math.max(0, lsb - 32 * w), Math.min(32, lsb + width - 32 * w));
      if (access === 'rw' || access === 'wo') writable[w] = (writable[w]! | m) >>> 0;
      if (access === 'w1c') w1c[w] = (w1c[w]! | m) >>> 0;
      if (access === 'wo') writeOnly[w] = (writeOnly[w]! | m) >>> 0;
    }
  }
  const r: ResolvedRegister = { size: spec.size, dflt, fields, layout: defineLayout(spec.name, spec.size, fields), masks: { writable, w1c, writeOnly } };
  list.push(r);
  return r;
}

export class RegisterTable<M extends RegMap = RegMap> {
  readonly specs: readonly RegisterSpec[];
  private readonly byName = new Map<string, { spec: RegisterSpec; layout: Layout }>();

  constructor(
    readonly name: string,
    specs: readonly RegisterSpec[],
  ) {
    this.specs = Object.freeze([...specs]);
    for (const spec of specs) {
      if (this.byName.has(spec.name)) throw new Error(`${name}.${spec.name} declared twice`);
      this.byName.set(spec.name, { spec, layout: resolveRegister(spec, spec.access ?? 'rw').layout });
    }
  }

  private entry(reg: string): { spec: RegisterSpec; layout: Layout } {
    const e = this.byName.get(reg);
    if (e === undefined) throw new Error(`${this.name} has no register ${reg}`);
    return e;
  }

  spec(reg: RegName<M>): RegisterSpec {
    return this.entry(reg).spec;
  }

  offset(reg: RegName<M>): number {
    return this.entry(reg).spec.offset;
  }

  /** Offsets of every register by name. */
  offsets(): Readonly<Record<RegName<M>, number>> {
    return Object.freeze(Object.fromEntries(this.specs.map((s) => [s.name, s.offset]))) as Record<RegName<M>, number>;
  }

  /** The register's fields as a Layout (bits numbered within the register). */
  layout<R extends RegName<M>>(reg: R): Layout<M[R]> {
    return this.entry(reg).layout as Layout<M[R]>;
  }

  field<R extends RegName<M>>(reg: R, name: M[R]): BitField<M[R]> {
    const f = this.layout(reg).fields[name];
    if (f === undefined) throw new Error(`${this.name}.${reg} has no field ${name}`);
    return f;
  }

  /** A field's mask in the u32 word that holds it (for fields within one word). */
  mask<R extends RegName<M>>(reg: R, name: M[R]): number {
    const f = this.field(reg, name);
    if (f.shift + f.width > 32) throw new RangeError(`${this.name}.${reg}.${name} crosses a word`);
    return f.mask;
  }

  /** Every field's mask, by name (fields within one word). */
  masks<R extends RegName<M>>(reg: R): Readonly<Record<M[R], number>> {
    return fieldMasks(this.layout(reg));
  }

  /** A field of a value read from the register: a number (its low 32 bits) or its words, low first. */
  get<R extends RegName<M>>(reg: R, value: number | ArrayLike<number>, name: M[R]): number {
    const f = this.field(reg, name);
    if (typeof value !== 'number') return getBits(value, f);
    if (f.lsb >= 32) return 0;
    return f.shift + f.width <= 32 ? fieldGet(f, value) : getBits([value, 0], f);
  }

  /** Bits of the register's first word that software may write: its rw and wo fields (the whole register when it has none). */
  writableMask(reg: RegName<M>): number {
    return (this.accessMask(reg, 'rw') | this.accessMask(reg, 'wo')) >>> 0;
  }

  /** Bits of the register's first word that are write-1-to-clear. */
  w1cMask(reg: RegName<M>): number {
    return this.accessMask(reg, 'w1c');
  }

  private accessMask(reg: string, access: FieldAccess): number {
    const { spec, layout } = this.entry(reg);
    if (layout.order.length === 0) return (spec.access ?? 'rw') === access ? maskBits(0, Math.min(32, spec.size * 8)) : 0;
    let m = 0;
    for (const f of layout.order) if (f.access === access && f.word === 0) m |= f.mask;
    return m >>> 0;
  }

  /** The register's words, low first, from field values (fields not given are 0). */
  encode<R extends RegName<M>>(reg: R, values: RegisterValues<M, R>): Uint32Array {
    return encodeLayout(this.layout(reg), values);
  }

  /** A 32-bit value from field values (the low word of a wider register). */
  pack<R extends RegName<M>>(reg: R, values: RegisterValues<M, R>): number {
    return this.encode(reg, values)[0]!;
  }

  /** A 64-bit register's value from field values, as the u64 a driver writes. */
  pack64<R extends RegName<M>>(reg: R, values: RegisterValues<M, R>): bigint {
    const w = this.encode(reg, values);
    return (BigInt(w[1] ?? 0) << 32n) | BigInt(w[0]!);
  }

  /**
   * The same registers with other reset values (what the model's options
   * decide). Tables are immutable, so the same resets give the same table
   * (every machine asks again; a register file built from it then shares its
   * shape).
   */
  withResets(resets: Partial<Record<RegName<M>, number | readonly [number, number]>>): RegisterTable<M> {
    const r = resets as Partial<Record<string, number | readonly [number, number]>>;
    const key = JSON.stringify(r);
    let t = this.derivedByResets.get(key) as RegisterTable<M> | undefined;
    if (t === undefined) {
      t = new RegisterTable<M>(this.name, this.specs.map((s) => (r[s.name] !== undefined ? { ...s, reset: r[s.name]! } : s)));
      this.derivedByResets.set(key, t);
    }
    return t;
  }

  /** These registers and `more` (each typed by its own table); the same `more` gives the same table. */
  with<N extends RegMap>(more: RegisterTable<N>): RegisterTable<M & N> {
    let t = this.derivedWith.get(more) as RegisterTable<M & N> | undefined;
    if (t === undefined) {
      t = new RegisterTable<M & N>(this.name, [...this.specs, ...more.specs]);
      this.derivedWith.set(more, t);
    }
    return t;
  }

  private readonly derivedByResets = new Map<string, object>();
  private readonly derivedWith = new WeakMap<object, object>();
}

/** Declare a register table; its RegMap is inferred from the literal specs. */
export function defineRegisters<const S extends readonly RegisterSpec[]>(name: string, specs: S): RegisterTable<RegMapOf<S[number]>> {
  return new RegisterTable<RegMapOf<S[number]>>(name, specs);
}
