/**
 * A guest's view of its own physical memory, for building a guest
 * first-stage table (IA-32e builder) at guest-physical addresses, as a guest
 * kernel behind a vIOMMU would: `PhysMem` over byte accessors (host RAM at an
 * offset, or a VMM process's memory), and a bump allocator of guest pages.
 */
import { createIa32eBuilder, type Ia32eBuilder } from '../../../iommu/pgtable/ia32e-builder.ts';
import type { TablePageAllocator } from '../../../iommu/pgtable/types.ts';
import { MEMTX_OK, type MemTxResult, type PhysMem } from '../../../src/memory/phys-mem.ts';

export interface ByteAccess {
  read(gpa: number, length: number): Uint8Array;
  write(gpa: number, data: Uint8Array): void;
}

export class GuestMem implements PhysMem {
  constructor(private readonly io: ByteAccess) {}
  private dv(gpa: number, n: number): DataView {
    const b = this.io.read(gpa, n);
    return new DataView(b.buffer, b.byteOffset, n);
  }
  read8(a: number): number {
    return this.dv(a, 1).getUint8(0);
  }
  read16(a: number): number {
    return this.dv(a, 2).getUint16(0, true);
  }
  read32(a: number): number {
    return this.dv(a, 4).getUint32(0, true);
  }
  read32Checked(a: number): number {
    return this.read32(a);
  }
  read64(a: number): bigint {
    return this.dv(a, 8).getBigUint64(0, true);
  }
  private put(a: number, n: number, f: (d: DataView) => void): void {
    const b = new Uint8Array(n);
    f(new DataView(b.buffer));
    this.io.write(a, b);
  }
  write8(a: number, v: number): void {
    this.put(a, 1, (d) => d.setUint8(0, v));
  }
  write16(a: number, v: number): void {
    this.put(a, 2, (d) => d.setUint16(0, v, true));
  }
  write32(a: number, v: number): void {
    this.put(a, 4, (d) => d.setUint32(0, v >>> 0, true));
  }
  write64(a: number, v: bigint): void {
    this.put(a, 8, (d) => d.setBigUint64(0, v, true));
  }
  readInto(a: number, dst: Uint8Array): MemTxResult {
    dst.set(this.io.read(a, dst.length));
    return MEMTX_OK;
  }
  writeFrom(a: number, src: Uint8Array): MemTxResult {
    this.io.write(a, src);
    return MEMTX_OK;
  }
}

/** Guest pages [base, base + pages * 4K) handed out in order, zeroed. */
export function guestAllocator(mem: PhysMem, base: number, pages: number): TablePageAllocator {
  let next = base;
  return {
    alloc(bytes: number) {
      const size = Math.max(4096, bytes);
      if (next + size > base + pages * 4096) return undefined;
      const pa = next;
      next += size;
      mem.writeFrom(pa, new Uint8Array(size));
      return pa;
    },
    free() {},
  };
}

/** A guest's first-stage IA-32e (4-level) table in guest-physical memory. */
export function guestFirstStage(io: ByteAccess, tableBase: number, pages: number): { mem: GuestMem; s1: Ia32eBuilder } {
  const mem = new GuestMem(io);
  const s1 = createIa32eBuilder(mem, guestAllocator(mem, tableBase, pages), { levels: 4, maxPhysBits: 48 });
  if (typeof s1 === 'number') throw new Error(`ia32e builder ${s1}`);
  return { mem, s1 };
}

/** struct iommu_hwpt_vtd_s1 { u64 flags; u64 pgtbl_addr; u32 addr_width; u32 __reserved; } */
export function vtdS1(pgtbl: number, flags = 0, addrWidth = 48, reserved = 0): Uint8Array {
  const b = new Uint8Array(24);
  const d = new DataView(b.buffer);
  d.setBigUint64(0, BigInt(flags), true);
  d.setBigUint64(8, BigInt(pgtbl), true);
  d.setUint32(16, addrWidth, true);
  d.setUint32(20, reserved, true);
  return b;
}

/** struct iommu_hwpt_vtd_s1_invalidate { u64 addr; u64 npages; u32 flags; u32 __reserved; } entries. */
export function vtdInv(entries: { addr: bigint | number; npages: bigint | number; flags?: number; reserved?: number }[]): Uint8Array {
  const b = new Uint8Array(24 * entries.length);
  const d = new DataView(b.buffer);
  entries.forEach((e, i) => {
    d.setBigUint64(i * 24, BigInt(e.addr), true);
    d.setBigUint64(i * 24 + 8, BigInt(e.npages), true);
    d.setUint32(i * 24 + 16, e.flags ?? 0, true);
    d.setUint32(i * 24 + 20, e.reserved ?? 0, true);
  });
  return b;
}
