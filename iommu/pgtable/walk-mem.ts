/**
 * Memory as an IOMMU's table walker sees it (shared by the SMMUv3 and VT-d
 * models): every 64-bit descriptor fetch (two checked dwords, low first)
 * passes the model's walk-read injection point once; 'fail' (and, with
 * `dropFails`, 'drop') makes the fetch abort as a decode error would, and
 * 'corrupt' XORs the descriptor. The address of a fetch that aborted is
 * remembered (SMMUv3 F_WALK_EABT FetchAddr, §7.3.12). An instance built with
 * `noWrites` drops hardware A/D updates (SMMUv3 CD.AFFD / STE.S2AFFD: an
 * AF == 0 descriptor is treated as AF == 1 without being written, §5.4).
 * The injection context names the requester (`sid`, and `pasid` when the
 * walk is for one) so a fault plan can match a device or a PASID: SMMUv3
 * sets them per walk with requester(); VT-d walkers get a tagged view from
 * withRequester() when their context or PASID entry is loaded.
 */
import type { InjectionPoint } from '../../src/fault/injector.ts';
import type { MemTxResult, PhysMem } from '../../src/memory/phys-mem.ts';

export interface WalkMemOptions {
  /** Drop hardware updates (writes) instead of performing them. */
  noWrites?: boolean;
  /** Treat an injected 'drop' like 'fail' (the fetch reaches nothing). */
  dropFails?: boolean;
}

export class WalkMem implements PhysMem {
  /** Physical address of the last descriptor whose read aborted, or -1. */
  lastFailAddr = -1;
  /** Requester of the walk in progress (StreamID / source-id), or -1: passed to the injection point. */
  sid = -1;
  /** PASID / SubstreamID of the walk in progress, or -1 for none. */
  pasid = -1;
  private corruptAddr = -1;
  private corruptXor = 0;

  private readonly noWrites: boolean;
  private readonly dropFails: boolean;

  constructor(
    private readonly mem: PhysMem,
    private readonly point: InjectionPoint,
    opts: WalkMemOptions = {},
  ) {
    this.noWrites = opts.noWrites ?? false;
    this.dropFails = opts.dropFails ?? false;
  }

  /** Name the requester of the walks that follow (two stores: off the IOTLB-hit path, on walks only). */
  requester(sid: number, pasid: number): void {
    this.sid = sid;
    this.pasid = pasid;
  }

  /** A view of the same memory and injection point whose walks always name this requester. */
  withRequester(sid: number, pasid: number): WalkMem {
    const w = new WalkMem(this.mem, this.point, { noWrites: this.noWrites, dropFails: this.dropFails });
    w.requester(sid, pasid);
    return w;
  }

  private injectionCtx(addr: number): Record<string, number> {
    const ctx: Record<string, number> = { addr };
    if (this.sid >= 0) ctx.sid = this.sid;
    if (this.pasid >= 0) ctx.pasid = this.pasid;
    return ctx;
  }

  read32Checked(addr: number): number {
    let xor = 0;
    // `& 7` on a safe integer, not `% 8` (a double's remainder is a runtime call; two reads per descriptor).
    if ((addr & 7) === 0 && Number.isSafeInteger(addr)) {
      // The low half of a descriptor: one injection check per descriptor.
      const a = this.point.check(this.point.armed ? this.injectionCtx(addr) : undefined);
      if (a !== undefined) {
        if (a.kind === 'fail' || (this.dropFails && a.kind === 'drop')) {
          this.lastFailAddr = addr;
          return -1;
        }
        if (a.kind === 'corrupt') {
          xor = a.xorLo;
          this.corruptAddr = addr + 4;
          this.corruptXor = a.xorHi ?? 0;
        }
      }
    } else if (addr === this.corruptAddr) {
      xor = this.corruptXor;
      this.corruptAddr = -1;
    }
    const v = this.mem.read32Checked(addr);
    if (v < 0) {
      this.lastFailAddr = addr - (addr % 8);
      return -1;
    }
    return (v ^ xor) >>> 0;
  }

  write32(addr: number, value: number): void {
    if (!this.noWrites) this.mem.write32(addr, value);
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
    if (!this.noWrites) this.mem.write8(addr, value);
  }
  write16(addr: number, value: number): void {
    if (!this.noWrites) this.mem.write16(addr, value);
  }
  write64(addr: number, value: bigint): void {
    if (!this.noWrites) this.mem.write64(addr, value);
  }
  write64Parts(addr: number, lo: number, hi: number): void {
    if (!this.noWrites) this.mem.write64Parts(addr, lo, hi);
  }
  readInto(addr: number, dst: Uint8Array): MemTxResult {
    return this.mem.readInto(addr, dst);
  }
  writeFrom(addr: number, src: Uint8Array): MemTxResult {
    return this.noWrites ? 0 : this.mem.writeFrom(addr, src);
  }
}
