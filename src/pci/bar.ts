import type { MemoryRegion } from '../memory/memory-region.ts';
import type { ConfigSpace } from './config-space.ts';
import { BAR_BITS, CFG } from './header.ts';

/**
 * Base Address Registers (PCI 3.0 §6.2.5.1): the low bits say what the BAR
 * is; the address bits below the BAR's size are read-only zero, which is how
 * software sizes a BAR by writing all-ones and reading back.
 */
export type BarKind = 'mem32' | 'mem64' | 'io';

export interface BarSpec {
  kind: BarKind;
  /** A power of two: at least 16 for memory, 4 for I/O (256 at most). */
  size: number;
  prefetchable?: boolean;
  /** What the BAR exposes when mapped (its size must be `size`). */
  region: MemoryRegion;
}

export interface Bar extends Required<BarSpec> {
  index: number;
  /** Where it is mapped now in the bus's memory space, or undefined. */
  mappedAt: number | undefined;
}

const TWO_32 = 0x1_0000_0000;

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** Lay out a BAR's read-only type bits and writable address bits. */
export function initBar(cfg: ConfigSpace, index: number, spec: BarSpec, maxBars: number): void {
  const limit = spec.kind === 'mem64' ? maxBars - 1 : maxBars;
  if (index < 0 || index >= limit) throw new RangeError(`BAR${index} does not exist here`);
  if (!isPowerOfTwo(spec.size)) throw new RangeError(`BAR${index} size ${spec.size} is not a power of two`);
  if (spec.kind === 'io' ? spec.size < 4 || spec.size > 256 : spec.size < 16) {
    throw new RangeError(`BAR${index} size ${spec.size} out of range for ${spec.kind}`);
  }
  const off = CFG.BAR0 + 4 * index;
  if (spec.kind === 'io') {
    cfg.set32(off, BAR_BITS.IO_SPACE);
    cfg.setWritable(off, 4, ~(spec.size - 1) & 0xfffffffc);
    return;
  }
  const low = (spec.kind === 'mem64' ? BAR_BITS.MEM_TYPE_64 : 0) | (spec.prefetchable ? BAR_BITS.PREFETCH : 0);
  cfg.set32(off, low);
  const lowMask = spec.size >= TWO_32 ? 0 : ~(spec.size - 1) & 0xfffffff0;
  cfg.setWritable(off, 4, lowMask);
  if (spec.kind === 'mem64') {
    const highMask = spec.size > TWO_32 ? ~(spec.size / TWO_32 - 1) >>> 0 : 0xffffffff;
    cfg.set32(off + 4, 0);
    cfg.setWritable(off + 4, 4, highMask);
  }
}

/** The address a memory BAR is programmed with, or undefined when it cannot be decoded. */
export function barAddress(cfg: ConfigSpace, bar: Bar): number | undefined {
  const off = CFG.BAR0 + 4 * bar.index;
  const low = cfg.get32(off);
  if (bar.kind === 'io') return undefined;
  let addr = (low & 0xfffffff0) >>> 0;
  if (bar.kind === 'mem64') addr += cfg.get32(off + 4) * TWO_32;
  // Address 0 is "not assigned"; all-ones sizing patterns past the 52-bit space cannot decode.
  if (addr === 0 || addr + bar.size > 2 ** 52) return undefined;
  return addr;
}
