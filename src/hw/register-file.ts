import type { AccessSize, MmioOps } from '../memory/memory-region.ts';
import { formatLayout, getBits, setBits, type BitField, type FieldAccess, type FieldSpec, type Layout } from './layout.ts';
import { RegisterTable, resolveRegister, type RegMap, type RegName, type RegisterSpec } from './registers.ts';

export type { FieldAccess } from './layout.ts';

/**
 * A device's MMIO registers served from a register table (registers.ts):
 * read-only bits keep their value, RW1C bits clear on 1, write-only bits
 * read 0, sub-word accesses merge into the word; the device side gets
 * typed getters and setters and pretty-printing. Values are kept as u32
 * words; a 64-bit register is two words, low first, as a 32-bit bus sees
 * it. Field reads and writes are exact up to 53 bits, also across the two
 * words of a 64-bit register.
 */

/** A register: where it is, its reset value and its fields in the one notation, `[name, msb, lsb?, access?]`. */
export interface RegisterDef {
  name: string;
  offset: number;
  size: 4 | 8;
  reset?: number | readonly [number, number];
  fields?: readonly FieldSpec[];
  access?: FieldAccess;
}

export type RegisterWriteHook = (reg: RegisterDef, oldLo: number, oldHi: number) => void;
export type RegisterReadHook = (reg: RegisterDef, word: number) => number;

/** A register of a file's shape: shared by every file made from the same definitions. */
interface RegInfo {
  readonly def: RegisterDef;
  /** Index of the register's low word in a file's storage (registers' words only, in declaration order). */
  readonly index: number;
  /** Its place in declaration order (where a file keeps its hooks and views). */
  readonly ordinal: number;
  readonly layout: Layout;
}

/**
 * What a list of register definitions makes, once: storage layout, the
 * per-word access masks, the MMIO word map, reset values and the registers
 * by name. Every machine declares the same registers again (a campaign
 * builds one per run), so a file shares its shape and owns only its words,
 * hooks and views.
 */
interface Shape {
  readonly writable: Uint32Array;
  readonly w1c: Uint32Array;
  readonly writeOnly: Uint32Array;
  /** Per storage word: its register (the word within it is the storage index less the register's). */
  readonly byWord: readonly RegInfo[];
  /** Every register, in declaration order. */
  readonly regs: readonly RegInfo[];
  /** Per 32-bit word of the MMIO space: 1 + its storage index, 0 where no register is. */
  readonly slotOf: Int32Array;
  readonly byName: ReadonlyMap<string, RegInfo>;
  /** The storage words at reset. */
  readonly resetWords: Uint32Array;
}

/** Shapes by definition list (a RegisterTable or an array kept by its owner), then MMIO size. */
const shapes = new WeakMap<object, Map<number, Shape>>();

function shapeOf(name: string, size: number, defs: RegisterTable | readonly RegisterDef[]): Shape {
  let bySize = shapes.get(defs);
  if (bySize === undefined) shapes.set(defs, (bySize = new Map()));
  let shape = bySize.get(size);
  if (shape === undefined) bySize.set(size, (shape = buildShape(name, size, defs instanceof RegisterTable ? (defs.specs as readonly RegisterSpec[]) : defs)));
  return shape;
}

function buildShape(name: string, size: number, list: readonly (RegisterSpec | RegisterDef)[]): Shape {
  // Storage for the registers' words only (an IOMMU's register space is mostly holes).
  let m = 0;
  for (const reg of list) m += reg.size === 8 ? 2 : 1;
  const writable = new Uint32Array(m);
  const w1c = new Uint32Array(m);
  const writeOnly = new Uint32Array(m);
  const resetWords = new Uint32Array(m);
  const slotOf = new Int32Array(Math.ceil(size / 4));
  const byWord: RegInfo[] = [];
  const regs: RegInfo[] = [];
  const byName = new Map<string, RegInfo>();
  let next = 0;
  for (const spec of list) {
    if (spec.size !== 4 && spec.size !== 8) throw new RangeError(`${name}.${spec.name}: a register file holds 4- and 8-byte registers`);
    if (spec.offset % 4 !== 0 || spec.offset + spec.size > size) throw new RangeError(`${name}.${spec.name}: bad offset`);
    if (byName.has(spec.name)) throw new Error(`${name}.${spec.name} declared twice`);
    const dflt = spec.access ?? 'rw';
    const { fields, layout, masks } = resolveRegister(spec, dflt);
    const def: RegisterDef = { name: spec.name, offset: spec.offset, size: spec.size, fields, access: dflt };
    if (spec.reset !== undefined) def.reset = spec.reset;
    const index = next;
    const words = spec.size / 4;
    next += words;
    const info: RegInfo = { def, index, ordinal: regs.length, layout };
    byName.set(spec.name, info);
    regs.push(info);
    const r = spec.reset ?? 0;
    resetWords[index] = typeof r === 'number' ? r : r[0];
    if (words === 2) resetWords[index + 1] = typeof r === 'number' ? 0 : r[1];
    for (let w = 0; w < words; w++) {
      const at = spec.offset / 4 + w;
      if (slotOf[at] !== 0) throw new Error(`${name}.${spec.name} overlaps ${byWord[slotOf[at]! - 1]!.def.name}`);
      slotOf[at] = index + w + 1;
      byWord[index + w] = info;
      writable[index + w] = masks.writable[w]!;
      w1c[index + w] = masks.w1c[w]!;
      writeOnly[index + w] = masks.writeOnly[w]!;
    }
  }
  return { writable, w1c, writeOnly, byWord, regs, slotOf, byName, resetWords };
}

/** One field of one register of a RegisterFile (see RegisterFile.fieldRef). */
export class FieldRef {
  constructor(
    private readonly view: Uint32Array,
    readonly field: BitField,
  ) {}

  get(): number {
    return getBits(this.view, this.field);
  }

  set(value: number): void {
    setBits(this.view, this.field, value);
  }
}

/** The low word of one register of a RegisterFile, resolved once (see RegisterFile.ref). */
export class RegRef {
  constructor(
    private readonly words: Uint32Array,
    private readonly index: number,
  ) {}

  get(): number {
    return this.words[this.index]!;
  }

  set(value: number): void {
    this.words[this.index] = value;
  }
}

/**
 * `M` maps each register name to its field names (RegMapOf a table); the
 * default accepts any name, for files built from untyped definitions.
 */
export class RegisterFile<M extends RegMap = RegMap> {
  readonly name: string;
  readonly size: number;
  readonly ops: MmioOps;
  private readonly shape: Shape;
  private readonly words: Uint32Array;
  /** onWrite/onRead's hooks and the registers' storage views (made on first use), by declaration order. */
  private readonly writeHooks: (RegisterWriteHook | undefined)[];
  private readonly readHooks: (RegisterReadHook | undefined)[];
  private readonly views: (Uint32Array | undefined)[];

  /**
   * `defs`: a RegisterTable, or an array of definitions. The file's shape is
   * built once per table or array (and MMIO size) and shared, so an array
   * must not change after a file is made from it.
   */
  constructor(name: string, size: number, defs: RegisterTable<M> | readonly RegisterDef[]) {
    this.name = name;
    this.size = size;
    const shape = (this.shape = shapeOf(name, size, defs));
    this.words = new Uint32Array(shape.resetWords.length);
    const n = shape.regs.length;
    this.writeHooks = new Array<RegisterWriteHook | undefined>(n).fill(undefined);
    this.readHooks = new Array<RegisterReadHook | undefined>(n).fill(undefined);
    this.views = new Array<Uint32Array | undefined>(n).fill(undefined);
    this.ops = {
      read: (offset, sz) => this.mmioRead(offset, sz),
      write: (offset, sz, value) => this.mmioWrite(offset, sz, value),
    };
    this.reset();
  }

  private view(r: RegInfo): Uint32Array {
    return (this.views[r.ordinal] ??= this.words.subarray(r.index, r.index + r.def.size / 4));
  }

  /** Back to reset values (hooks are not called). */
  reset(): void {
    this.words.set(this.shape.resetWords);
  }

  private info(name: string): RegInfo {
    const r = this.shape.byName.get(name);
    if (r === undefined) throw new Error(`${this.name} has no register ${name}`);
    return r;
  }

  def(name: RegName<M>): RegisterDef {
    return this.info(name).def;
  }

  /** The register's fields as a Layout (bits numbered within the register). */
  layout<R extends RegName<M>>(name: R): Layout<M[R]> {
    return this.info(name).layout as Layout<M[R]>;
  }

  /** Call `fn` after software writes any byte of the register. */
  onWrite(name: RegName<M>, fn: RegisterWriteHook): void {
    this.writeHooks[this.info(name).ordinal] = fn;
  }

  /** Compute the value software reads (for registers that reflect live state). */
  onRead(name: RegName<M>, fn: RegisterReadHook): void {
    this.readHooks[this.info(name).ordinal] = fn;
  }

  // --- device side ---------------------------------------------------------

  /** Low word (the whole value for 32-bit registers). */
  get(name: RegName<M>): number {
    return this.words[this.info(name).index]!;
  }
  getHi(name: RegName<M>): number {
    return this.words[this.info(name).index + 1]!;
  }
  /** A 64-bit register's exact value (a bigint: DESIGN.md §8; hot paths read its words or fields). */
  get64(name: RegName<M>): bigint {
    const o = this.info(name).index;
    return (BigInt(this.words[o + 1]!) << 32n) | BigInt(this.words[o]!);
  }
  set(name: RegName<M>, lo: number, hi?: number): void {
    const r = this.info(name);
    this.words[r.index] = lo;
    if (r.def.size === 8 && hi !== undefined) this.words[r.index + 1] = hi;
  }
  /** A field's value (a misspelt register or field does not compile in a typed file). */
  getField<R extends RegName<M>>(name: R, fieldName: M[R]): number {
    const r = this.info(name);
    return getBits(this.view(r), this.fieldOf(r, fieldName));
  }
  setField<R extends RegName<M>>(name: R, fieldName: M[R], value: number): void {
    const r = this.info(name);
    setBits(this.view(r), this.fieldOf(r, fieldName), value);
  }

  /** A handle on a register's low word, resolved once: get/set through it do no name lookup (per-descriptor registers). */
  ref(name: RegName<M>): RegRef {
    return new RegRef(this.words, this.info(name).index);
  }

  /**
   * A handle on one field, resolved once: reads and writes through it do no
   * name lookup (for paths that touch a register per request).
   */
  fieldRef<R extends RegName<M>>(name: R, fieldName: M[R]): FieldRef {
    const r = this.info(name);
    return new FieldRef(this.view(r), this.fieldOf(r, fieldName));
  }

  private fieldOf(r: RegInfo, fieldName: string): BitField {
    const f = r.layout.fields[fieldName];
    if (f === undefined) throw new Error(`${this.name}.${r.def.name} has no field ${fieldName}`);
    return f;
  }

  /** "CR0 = 0x5 (SMMUEN=1 EVTQEN=0 CMDQEN=1)" for traces and logs. */
  describe(name: RegName<M>): string {
    const r = this.info(name);
    const view = this.view(r);
    const lo = view[0]!;
    const hi = r.def.size === 8 ? view[1]! : 0;
    const value = r.def.size === 8 ? `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}` : `0x${lo.toString(16)}`;
    const parts = r.layout.order.map((f) => `${f.name}=${getBits(view, f)}`);
    return parts.length > 0 ? `${name} = ${value} (${parts.join(' ')})` : `${name} = ${value}`;
  }

  /** The register's non-zero fields, "CR0{SMMUEN=1 CMDQEN=1}". */
  format(name: RegName<M>): string {
    const r = this.info(name);
    return formatLayout(r.layout, this.view(r));
  }

  // --- software side ---------------------------------------------------------

  private mmioRead(offset: number, size: AccessSize): number {
    const shape = this.shape;
    const i = (shape.slotOf[offset >> 2] ?? 0) - 1;
    if (i < 0) return 0;
    const reg = shape.byWord[i]!;
    const hook = this.readHooks[reg.ordinal];
    let word = hook !== undefined ? hook(reg.def, i - reg.index) >>> 0 : this.words[i]!;
    word = (word & ~shape.writeOnly[i]!) >>> 0;
    const shift = (offset & 3) * 8;
    return size === 4 ? word : (word >>> shift) & (size === 2 ? 0xffff : 0xff);
  }

  private mmioWrite(offset: number, size: AccessSize, value: number): void {
    const shape = this.shape;
    const i = (shape.slotOf[offset >> 2] ?? 0) - 1;
    if (i < 0) return;
    const reg = shape.byWord[i]!;
    const shift = (offset & 3) * 8;
    const lanes = size === 4 ? 0xffffffff : (((size === 2 ? 0xffff : 0xff) << shift) >>> 0);
    const v = ((value << shift) & lanes) >>> 0;
    const oldLo = this.words[reg.index]!;
    const oldHi = reg.def.size === 8 ? this.words[reg.index + 1]! : 0;
    const old = this.words[i]!;
    const wm = (shape.writable[i]! & lanes) >>> 0;
    let next = ((old & ~wm) | (v & wm)) >>> 0;
    next = (next & ~(v & shape.w1c[i]!)) >>> 0;
    this.words[i] = next;
    this.writeHooks[reg.ordinal]?.(reg.def, oldLo, oldHi);
  }
}
