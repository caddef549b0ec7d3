/**
 * Linux uapi structs declared once as data (DESIGN.md §1): field names and C
 * types; offsets, padding and size follow the C ABI of x86-64 and arm64
 * (natural alignment, `__aligned_u64` = 8). The same table encodes and
 * decodes the bytes a process passes to ioctl(), so a struct's layout lives
 * in one place. u64 fields are bigint here, exact at the boundary; callers
 * convert to numbers after checking the range.
 */
export type CType = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | `u8[${number}]` | `u32[${number}]` | `u64[${number}]`;

export interface StructField {
  readonly name: string;
  readonly type: CType;
  readonly offset: number;
  readonly size: number;
}

export interface StructDef<F extends string = string> {
  readonly name: string;
  readonly size: number;
  readonly fields: Readonly<Record<F, StructField>>;
  readonly order: readonly StructField[];
}

function sizeAlign(type: CType): [size: number, align: number] {
  const m = /^(u8|u32|u64)\[(\d+)\]$/.exec(type);
  if (m !== null) {
    const [s] = sizeAlign(m[1] as CType);
    return [s * Number(m[2]), s];
  }
  switch (type) {
    case 'u8':
      return [1, 1];
    case 'u16':
      return [2, 2];
    case 'u32':
    case 's32':
      return [4, 4];
    default:
      return [8, 8];
  }
}

export function defineStruct<const F extends string>(name: string, fields: readonly (readonly [F, CType])[]): StructDef<F> {
  let off = 0;
  let maxAlign = 1;
  const byName = {} as Record<F, StructField>;
  const order: StructField[] = [];
  for (const [fname, type] of fields) {
    const [size, align] = sizeAlign(type);
    off = Math.ceil(off / align) * align;
    const f: StructField = { name: fname, type, offset: off, size };
    byName[fname] = f;
    order.push(f);
    off += size;
    maxAlign = Math.max(maxAlign, align);
  }
  return { name, size: Math.ceil(off / maxAlign) * maxAlign, fields: byName, order };
}

/** Little-endian view helpers over a byte buffer (the process's struct bytes). */
export class StructView<F extends string> {
  private readonly dv: DataView;
  constructor(
    readonly def: StructDef<F>,
    readonly bytes: Uint8Array,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** True when the buffer holds the whole field. */
  has(name: F): boolean {
    const f = this.def.fields[name];
    return f.offset + f.size <= this.bytes.length;
  }

  /** u8/u16/u32/s32 fields. */
  num(name: F): number {
    const f = this.def.fields[name];
    if (f.offset + f.size > this.bytes.length) return 0;
    switch (f.type) {
      case 'u8':
        return this.dv.getUint8(f.offset);
      case 'u16':
        return this.dv.getUint16(f.offset, true);
      case 's32':
        return this.dv.getInt32(f.offset, true);
      default:
        return this.dv.getUint32(f.offset, true);
    }
  }

  big(name: F): bigint {
    const f = this.def.fields[name];
    if (f.offset + 8 > this.bytes.length) return 0n;
    return this.dv.getBigUint64(f.offset, true);
  }

  setNum(name: F, v: number): void {
    const f = this.def.fields[name];
    if (f.offset + f.size > this.bytes.length) return;
    switch (f.type) {
      case 'u8':
        this.dv.setUint8(f.offset, v);
        break;
      case 'u16':
        this.dv.setUint16(f.offset, v, true);
        break;
      case 's32':
        this.dv.setInt32(f.offset, v, true);
        break;
      default:
        this.dv.setUint32(f.offset, v >>> 0, true);
    }
  }

  setBig(name: F, v: bigint | number): void {
    const f = this.def.fields[name];
    if (f.offset + 8 > this.bytes.length) return;
    this.dv.setBigUint64(f.offset, BigInt.asUintN(64, BigInt(v)), true);
  }

  /** Bytes of an array field. */
  raw(name: F): Uint8Array {
    const f = this.def.fields[name];
    return this.bytes.subarray(f.offset, Math.min(f.offset + f.size, this.bytes.length));
  }
}

/** Encode an object into a fresh buffer of the struct's size (for typed clients and tests). */
export function encodeStruct<F extends string>(def: StructDef<F>, values: Partial<Record<F, number | bigint>>, size = def.size): Uint8Array {
  const bytes = new Uint8Array(size);
  const v = new StructView(def, bytes);
  for (const [k, val] of Object.entries(values) as [F, number | bigint | undefined][]) {
    if (val === undefined) continue;
    const f = def.fields[k];
    if (f === undefined) throw new Error(`${def.name} has no field ${k}`);
    if (f.type === 'u64') v.setBig(k, val);
    else v.setNum(k, Number(val));
  }
  return bytes;
}

/** Decode every scalar field (u64 as bigint). */
export function decodeStruct<F extends string>(def: StructDef<F>, bytes: Uint8Array): Record<F, number | bigint> {
  const v = new StructView(def, bytes);
  const out = {} as Record<F, number | bigint>;
  for (const f of def.order) {
    if (f.type.includes('[')) continue;
    out[f.name as F] = f.type === 'u64' ? v.big(f.name as F) : v.num(f.name as F);
  }
  return out;
}

/** A u64 as an exact JS number, or undefined beyond 2^53 - 1. */
export function u64ToNumber(v: bigint): number | undefined {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

export const U64_MAX = 0xffff_ffff_ffff_ffffn;
