/**
 * The part every walker shares: fetch one 64-bit descriptor as two checked
 * u32 reads (through the nested hook when there is one), and write back a
 * low half after a hardware A/D update. Failures are recorded in the result
 * as the architecture would report them; nothing here throws.
 */
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import { FaultKind, type TableAddrTranslator, type WalkResult } from './types.ts';

export const TWO_32 = 0x1_0000_0000;

/** Powers of two as numbers, indexed by exponent 0..63 (exact). */
export const POW2: readonly number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);

/**
 * Reads descriptors for one walker. The walker keeps one instance, so the
 * last fetched halves and their physical address live here, not in fresh
 * objects.
 */
export class DescFetcher {
  lo = 0;
  hi = 0;
  /** Physical address the last descriptor was read from. */
  pa = 0;

  constructor(
    private readonly mem: PhysMem,
    public translator: TableAddrTranslator | undefined,
  ) {}

  /**
   * Fetch the descriptor at table address `addr` for a walk at `level`.
   * False after recording a stage-2 fault (hook) or an external abort.
   */
  fetch(addr: number, level: number, r: WalkResult): boolean {
    let pa = addr;
    if (this.translator !== undefined) {
      pa = this.translator.translateTableAddr(addr, false, r);
      if (pa < 0) return stage2Fault(r, addr, level);
    }
    const lo = this.mem.read32Checked(pa);
    const hi = lo < 0 ? -1 : this.mem.read32Checked(pa + 4);
    r.memReads++;
    if (lo < 0 || hi < 0) return r.failed(FaultKind.ExternalAbort, level);
    this.lo = lo;
    this.hi = hi;
    this.pa = pa;
    return true;
  }

  /**
   * Write the low half of the descriptor whose table address is `addr` and
   * last physical address `pa`. Nested walks re-translate for write so a
   * read-only stage-2 mapping of the table faults as the hardware would.
   */
  writeLo(addr: number, pa: number, lo: number, level: number, r: WalkResult): boolean {
    let target = pa;
    if (this.translator !== undefined) {
      target = this.translator.translateTableAddr(addr, true, r);
      if (target < 0) return stage2Fault(r, addr, level);
    }
    this.mem.write32(target, lo >>> 0);
    r.memWrites++;
    return true;
  }
}

function stage2Fault(r: WalkResult, addr: number, level: number): boolean {
  r.s2OnTableWalk = true;
  r.s2FaultAddr = addr;
  if (r.s2FaultKind === FaultKind.None) r.s2FaultKind = FaultKind.Translation;
  return r.failed(FaultKind.Stage2, level);
}

/** Index of `ia` in a table whose entries each span 2^shift bytes and which has `entries` slots. */
export function tableIndex(ia: number, shift: number, entries: number): number {
  // Every format's tables have a power-of-two number of slots: remPow2 spares each level of each walk an fmod.
  return remPow2(Math.floor(ia / POW2[shift]!), entries);
}

/**
 * x % m for a power-of-two m up to 2^30 without `%` on a double (a call into
 * the runtime's fmod): x minus its truncated quotient's multiple, exact for
 * |x| < 2^53 as every step divides or multiplies by a power of two. Any other
 * m goes to `%`.
 */
export function remPow2(x: number, m: number): number {
  if (m > 0 && m <= 0x4000_0000 && (m & (m - 1)) === 0) return x - Math.trunc(x / m) * m;
  return x % m;
}

/** True when `v` is an integer in [0, 2^bits). */
export function inRange(v: number, bits: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < POW2[bits]!;
}
