import type { ConfigSpace } from '../config-space.ts';

/**
 * Small helpers shared by the capability models (their fields are declared
 * in register tables, src/hw/registers.ts): a mask of the low bits, and the
 * recovery of a register's value before a software write (config write
 * hooks receive the old bytes of the range written, not the register).
 */

/** A mask of the low `n` bits (0 <= n <= 32). */
export function lowBits(n: number): number {
  return n >= 32 ? 0xffffffff : 2 ** Math.max(0, n) - 1;
}

/**
 * The value register [reg, reg+size) held before a software write of
 * [off, off+oldBytes.length): bytes inside the write come from `oldBytes`,
 * the others are unchanged in `cfg`.
 */
export function valueBefore(
  cfg: ConfigSpace,
  reg: number,
  size: number,
  off: number,
  oldBytes: Uint8Array,
): number {
  let v = 0;
  for (let i = 0; i < size; i++) {
    const o = reg + i;
    const inWrite = o >= off && o < off + oldBytes.length;
    const b = inWrite ? oldBytes[o - off]! : cfg.get8(o);
    v |= b << (8 * i);
  }
  return v >>> 0;
}

