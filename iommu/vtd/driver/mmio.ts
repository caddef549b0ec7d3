import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { VTD_REG } from '../regs.ts';

/**
 * GSTS bits that are one-shot status (RTPS, FLS, WBFS, IRTPS): masked out of
 * the value written back to GCMD, as the VT-d spec's §10.4.4 pseudo-code and
 * Linux do (0x96FF_FFFF).
 */
const ONE_SHOT_MASK = 0x96ff_ffff;

/** The driver's view of the unit's register window: named 32/64-bit accesses through system memory. */
export class VtdMmio {
  constructor(
    readonly mem: PhysMem,
    readonly base: number,
  ) {}

  r32(reg: string): number {
    return this.mem.read32(this.base + off(reg));
  }

  w32(reg: string, v: number): void {
    this.mem.write32(this.base + off(reg), v >>> 0);
  }

  /** A 64-bit register as [lo, hi] dwords. */
  r64(reg: string): [number, number] {
    const a = this.base + off(reg);
    return [this.mem.read32(a), this.mem.read32(a + 4)];
  }

  /** A 64-bit register as a number (bits above 2^53 are lost: fine for addresses and offsets). */
  rq(reg: string): number {
    const [lo, hi] = this.r64(reg);
    return hi * 0x1_0000_0000 + lo;
  }

  w64(reg: string, v: number): void {
    this.mem.write64(this.base + off(reg), BigInt(v));
  }

  /** At an offset that is not a named register (fault recording registers). */
  r32At(offset: number): number {
    return this.mem.read32(this.base + offset);
  }

  w32At(offset: number, v: number): void {
    this.mem.write32(this.base + offset, v >>> 0);
  }

  /**
   * Set or clear one GCMD command bit and wait for its GSTS status to follow
   * (Linux: read GSTS, mask one-shots, write GCMD, IOMMU_WAIT_OP on GSTS).
   * `status` is the GSTS bit to watch (the same position for TE/QIE; RTPS for SRTP).
   */
  gcmd(bit: number, on: boolean, status = bit): boolean {
    const sts = this.r32('GSTS') & ONE_SHOT_MASK;
    this.w32('GCMD', on ? sts | bit : sts & ~bit);
    return ((this.r32('GSTS') & status) !== 0) === on;
  }
}

function off(reg: string): number {
  const o = VTD_REG[reg];
  if (o === undefined) throw new Error(`no VT-d register ${reg}`);
  return o;
}
