import type { AccessSize, MmioOps } from '../memory/memory-region.ts';

/**
 * A device's MMIO registers declared once, as data (the idea of QEMU's
 * registerfields.h REG32/FIELD): each register has an offset, a width and
 * fields with an access type. The table drives software access (read-only
 * bits keep their value, RW1C bits clear on 1, write-only bits read 0,
 * sub-word accesses merge into the word), device-side getters and setters,
 * and pretty-printing. Values are kept as u32 words; a 64-bit register is
 * two words, low first, as a 32-bit bus sees it.
 */
export type FieldAccess = 'ro' | 'rw' | 'w1c' | 'wo';

export interface FieldDef {
  name: string;
  shift: number;
  width: number;
  access: FieldAccess;
}

export interface RegisterDef {
  name: string;
  offset: number;
  size: 4 | 8;
  /** Reset value (a number for 32-bit registers; low/high words for 64-bit ones). */
  reset?: number | [number, number];
  /** Fields; a register without fields is wholly `access`. Bits in no field are reserved (read 0, ignore writes). */
  fields?: FieldDef[];
  access?: FieldAccess;
}

export type RegisterWriteHook = (reg: RegisterDef, oldLo: number, oldHi: number) => void;
export type RegisterReadHook = (reg: RegisterDef, word: number) => number;

interface WordInfo {
  reg: RegisterDef;
  word: 0 | 1;
}

export function field(name: string, shift: number, width: number, access: FieldAccess = 'rw'): FieldDef {
  return { name, shift, width, access };
}

export class RegisterFile {
  readonly name: string;
  readonly size: number;
  readonly ops: MmioOps;
  private readonly words: Uint32Array;
  private readonly writable: Uint32Array;
  private readonly w1c: Uint32Array;
  private readonly writeOnly: Uint32Array;
  private readonly byWord: (WordInfo | undefined)[];
  private readonly byName = new Map<string, RegisterDef>();
  private readonly writeHooks = new Map<string, RegisterWriteHook>();
  private readonly readHooks = new Map<string, RegisterReadHook>();

  constructor(name: string, size: number, defs: readonly RegisterDef[]) {
    this.name = name;
    this.size = size;
    const n = Math.ceil(size / 4);
    this.words = new Uint32Array(n);
    this.writable = new Uint32Array(n);
    this.w1c = new Uint32Array(n);
    this.writeOnly = new Uint32Array(n);
    this.byWord = new Array<WordInfo | undefined>(n);
    for (const reg of defs) this.declare(reg);
    this.ops = {
      read: (offset, sz) => this.mmioRead(offset, sz),
      write: (offset, sz, value) => this.mmioWrite(offset, sz, value),
    };
    this.reset();
  }

  private declare(reg: RegisterDef): void {
    if (reg.offset % 4 !== 0 || reg.offset + reg.size > this.size) throw new RangeError(`${this.name}.${reg.name}: bad offset`);
    if (this.byName.has(reg.name)) throw new Error(`${this.name}.${reg.name} declared twice`);
    this.byName.set(reg.name, reg);
    const fields = reg.fields ?? [{ name: reg.name, shift: 0, width: reg.size * 8, access: reg.access ?? 'rw' }];
    for (let w = 0; w < reg.size / 4; w++) {
      const i = reg.offset / 4 + w;
      if (this.byWord[i] !== undefined) throw new Error(`${this.name}.${reg.name} overlaps ${this.byWord[i]!.reg.name}`);
      this.byWord[i] = { reg, word: w as 0 | 1 };
    }
    for (const f of fields) {
      for (let bit = f.shift; bit < f.shift + f.width; bit++) {
        const i = reg.offset / 4 + (bit >> 5);
        const m = (1 << (bit & 31)) >>> 0;
        if (f.access === 'rw' || f.access === 'wo') this.writable[i] = (this.writable[i]! | m) >>> 0;
        if (f.access === 'w1c') this.w1c[i] = (this.w1c[i]! | m) >>> 0;
        if (f.access === 'wo') this.writeOnly[i] = (this.writeOnly[i]! | m) >>> 0;
      }
    }
  }

  /** Back to reset values (hooks are not called). */
  reset(): void {
    this.words.fill(0);
    for (const reg of this.byName.values()) {
      const r = reg.reset ?? 0;
      const [lo, hi] = typeof r === 'number' ? [r, 0] : r;
      this.words[reg.offset / 4] = lo;
      if (reg.size === 8) this.words[reg.offset / 4 + 1] = hi;
    }
  }

  def(name: string): RegisterDef {
    const r = this.byName.get(name);
    if (r === undefined) throw new Error(`${this.name} has no register ${name}`);
    return r;
  }

  /** Call `fn` after software writes any byte of the register. */
  onWrite(name: string, fn: RegisterWriteHook): void {
    this.writeHooks.set(this.def(name).name, fn);
  }

  /** Compute the value software reads (for registers that reflect live state). */
  onRead(name: string, fn: RegisterReadHook): void {
    this.readHooks.set(this.def(name).name, fn);
  }

  // --- device side ---------------------------------------------------------

  /** Low word (the whole value for 32-bit registers). */
  get(name: string): number {
    return this.words[this.def(name).offset / 4]!;
  }
  getHi(name: string): number {
    return this.words[this.def(name).offset / 4 + 1]!;
  }
  /** A 64-bit register's value as a number (exact below 2^53). */
  get64(name: string): number {
    const o = this.def(name).offset / 4;
    return this.words[o + 1]! * 0x1_0000_0000 + this.words[o]!;
  }
  set(name: string, lo: number, hi?: number): void {
    const reg = this.def(name);
    this.words[reg.offset / 4] = lo;
    if (reg.size === 8 && hi !== undefined) this.words[reg.offset / 4 + 1] = hi;
  }
  getField(name: string, fieldName: string): number {
    const { reg, f } = this.lookupField(name, fieldName);
    const i = reg.offset / 4 + (f.shift >> 5);
    const shift = f.shift & 31;
    return f.width >= 32 ? this.words[i]! : (this.words[i]! >>> shift) & (2 ** f.width - 1);
  }
  setField(name: string, fieldName: string, value: number): void {
    const { reg, f } = this.lookupField(name, fieldName);
    const i = reg.offset / 4 + (f.shift >> 5);
    const shift = f.shift & 31;
    const mask = f.width >= 32 ? 0xffffffff : ((2 ** f.width - 1) << shift) >>> 0;
    this.words[i] = ((this.words[i]! & ~mask) | ((value << shift) & mask)) >>> 0;
  }

  private lookupField(name: string, fieldName: string): { reg: RegisterDef; f: FieldDef } {
    const reg = this.def(name);
    const f = reg.fields?.find((x) => x.name === fieldName);
    if (f === undefined) throw new Error(`${this.name}.${name} has no field ${fieldName}`);
    return { reg, f };
  }

  /** "CR0 = 0x5 (SMMUEN=1 EVTQEN=0 CMDQEN=1)" for traces and logs. */
  describe(name: string): string {
    const reg = this.def(name);
    const lo = this.words[reg.offset / 4]!;
    const hi = reg.size === 8 ? this.words[reg.offset / 4 + 1]! : 0;
    const value = reg.size === 8 ? `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}` : `0x${lo.toString(16)}`;
    const parts = (reg.fields ?? []).map((f) => `${f.name}=${this.getField(name, f.name)}`);
    return parts.length > 0 ? `${name} = ${value} (${parts.join(' ')})` : `${name} = ${value}`;
  }

  // --- software side ---------------------------------------------------------

  private mmioRead(offset: number, size: AccessSize): number {
    const i = offset >> 2;
    const info = this.byWord[i];
    if (info === undefined) return 0;
    const hook = this.readHooks.get(info.reg.name);
    let word = hook !== undefined ? hook(info.reg, info.word) >>> 0 : this.words[i]!;
    word = (word & ~this.writeOnly[i]!) >>> 0;
    const shift = (offset & 3) * 8;
    return size === 4 ? word : (word >>> shift) & (size === 2 ? 0xffff : 0xff);
  }

  private mmioWrite(offset: number, size: AccessSize, value: number): void {
    const i = offset >> 2;
    const info = this.byWord[i];
    if (info === undefined) return;
    const shift = (offset & 3) * 8;
    const lanes = size === 4 ? 0xffffffff : (((size === 2 ? 0xffff : 0xff) << shift) >>> 0);
    const v = ((value << shift) & lanes) >>> 0;
    const base = info.reg.offset / 4;
    const oldLo = this.words[base]!;
    const oldHi = info.reg.size === 8 ? this.words[base + 1]! : 0;
    const old = this.words[i]!;
    const wm = (this.writable[i]! & lanes) >>> 0;
    let next = ((old & ~wm) | (v & wm)) >>> 0;
    next = (next & ~(v & this.w1c[i]!)) >>> 0;
    this.words[i] = next;
    this.writeHooks.get(info.reg.name)?.(info.reg, oldLo, oldHi);
  }
}
