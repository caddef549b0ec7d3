/**
 * The memory page walks read through: the system address space, with the
 * 'vtd.walk_read' injection point checked once per 64-bit paging-entry
 * fetch (the walkers read an entry as two checked dwords, low first). An
 * injected failure makes the fetch fail as a decode error would (the walk
 * reports an external abort, i.e. a fetch-error fault reason); a corruption
 * XORs the entry. Everything else passes straight through.
 */
import type { InjectionPoint } from '../../src/fault/injector.ts';
import type { MemTxResult, PhysMem } from '../../src/memory/phys-mem.ts';

export class WalkMem implements PhysMem {
  private xorHi = 0;

  constructor(
    private readonly mem: PhysMem,
    private readonly point: InjectionPoint,
  ) {}

  read32Checked(addr: number): number {
    if (addr % 8 === 4) {
      const v = this.mem.read32Checked(addr);
      const x = this.xorHi;
      this.xorHi = 0;
      return v < 0 || x === 0 ? v : (v ^ x) >>> 0;
    }
    const a = this.point.check(this.point.armed ? { addr } : undefined);
    this.xorHi = 0;
    if (a !== undefined) {
      if (a.kind === 'fail' || a.kind === 'drop') return -1;
      if (a.kind === 'corrupt') {
        const v = this.mem.read32Checked(addr);
        this.xorHi = (a.xorHi ?? 0) >>> 0;
        return v < 0 ? v : (v ^ a.xorLo) >>> 0;
      }
    }
    return this.mem.read32Checked(addr);
  }

  read8(addr: number): number {
    return this.mem.read8(addr);
  }
  read16(addr: number): number {
    return this.mem.read16(addr);
  }
  read32(addr: number): number {
    return this.mem.read32(addr);
  }
  read64(addr: number): bigint {
    return this.mem.read64(addr);
  }
  write8(addr: number, value: number): void {
    this.mem.write8(addr, value);
  }
  write16(addr: number, value: number): void {
    this.mem.write16(addr, value);
  }
  write32(addr: number, value: number): void {
    this.mem.write32(addr, value);
  }
  write64(addr: number, value: bigint): void {
    this.mem.write64(addr, value);
  }
  readInto(addr: number, dst: Uint8Array): MemTxResult {
    return this.mem.readInto(addr, dst);
  }
  writeFrom(addr: number, src: Uint8Array): MemTxResult {
    return this.mem.writeFrom(addr, src);
  }
}
