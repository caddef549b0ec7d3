import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import type { RegName, RegisterValues, TableRegMap } from '../../../src/hw/registers.ts';
import { GSTS_ONE_SHOT, VTD_REG, VTD_REGS } from '../regs.ts';

type FixedRegs = TableRegMap<typeof VTD_REGS>;
/** A fixed register's name (the fault recording registers are reached by offset). */
export type VtdFixedReg = RegName<FixedRegs>;

/** The driver's view of the unit's register window: named 32/64-bit accesses through system memory, by field where it helps. */
export class VtdMmio {
  constructor(
    readonly mem: PhysMem,
    readonly base: number,
  ) {}

  r32(reg: VtdFixedReg): number {
    return this.mem.read32(this.base + VTD_REG[reg]);
  }

  w32(reg: VtdFixedReg, v: number): void {
    this.mem.write32(this.base + VTD_REG[reg], v >>> 0);
  }

  /** A 64-bit register as [lo, hi] dwords. */
  r64(reg: VtdFixedReg): [number, number] {
    const a = this.base + VTD_REG[reg];
    return [this.mem.read32(a), this.mem.read32(a + 4)];
  }

  w64(reg: VtdFixedReg, v: number | bigint): void {
    const a = this.base + VTD_REG[reg];
    // A number (a queue tail or head, below 2^53) goes as its two halves: no bigint on the per-fault path.
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) this.mem.write64Parts(a, v >>> 0, Math.floor(v / 0x1_0000_0000));
    else this.mem.write64(a, BigInt(v));
  }

  /** One field of a register as the unit reports it now. */
  field<R extends VtdFixedReg>(reg: R, name: FixedRegs[R]): number {
    return VTD_REGS.get(reg, VTD_REGS.spec(reg).size === 8 ? this.r64(reg) : this.r32(reg), name);
  }

  /** Write a register whole, from field values (fields not given are 0). */
  write<R extends VtdFixedReg>(reg: R, values: RegisterValues<FixedRegs, R>): void {
    if (VTD_REGS.spec(reg).size === 8) this.w64(reg, VTD_REGS.pack64(reg, values));
    else this.w32(reg, VTD_REGS.pack(reg, values));
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
   * (Linux: read GSTS, mask the one-shot status bits, write GCMD, IOMMU_WAIT_OP
   * on GSTS). `status` is the GSTS bit to watch (the same position for TE/QIE;
   * RTPS for SRTP).
   */
  gcmd(bit: number, on: boolean, status = bit): boolean {
    const sts = (this.r32('GSTS') & ~GSTS_ONE_SHOT) >>> 0;
    this.w32('GCMD', on ? sts | bit : sts & ~bit);
    return ((this.r32('GSTS') & status) !== 0) === on;
  }
}
