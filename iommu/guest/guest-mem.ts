/**
 * A guest's view of its own physical memory, for the guest half of nested
 * translation: a guest kernel behind a vIOMMU builds its stage-1 tables (and,
 * on SMMUv3, its CD table) at guest-physical addresses, in RAM that the VMM
 * backs with its own process memory. `GuestMem` is a `PhysMem` over byte
 * accessors addressed by GPA; `guestAllocator` hands out zeroed guest pages
 * for table builders; `processGuestRam` is the accessor for RAM a VMM
 * process mapped at a GPA.
 */
import type { TablePageAllocator } from '../../src/iommu-core/io-pgtable.ts';
import type { Process } from '../../src/host/process.ts';
import { MEMTX_OK, type MemTxResult, type PhysMem } from '../../src/memory/phys-mem.ts';

/** Byte reads and writes at guest-physical addresses. */
export interface ByteAccess {
  read(gpa: number, length: number): Uint8Array;
  write(gpa: number, data: Uint8Array): void;
}

/**
 * Guest RAM [gpaBase, ...) backed by a VMM process's memory at `va`: the
 * guest's accesses are the process's own CPU accesses. An access outside what
 * the process mapped is a bug in the scenario, so it throws.
 */
export function processGuestRam(p: Process, va: bigint, gpaBase: number): ByteAccess {
  const at = (gpa: number) => va + BigInt(gpa - gpaBase);
  return {
    read(gpa, length) {
      const r = p.memRead(at(gpa), length);
      if (typeof r === 'number') throw new Error(`guest read at GPA 0x${gpa.toString(16)}: ${r}`);
      return r;
    },
    write(gpa, data) {
      const r = p.memWrite(at(gpa), data);
      if (r < 0) throw new Error(`guest write at GPA 0x${gpa.toString(16)}: ${r}`);
    },
  };
}

/** Little-endian loads and stores over a `ByteAccess`, as `PhysMem`. */
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
  write64Parts(a: number, lo: number, hi: number): void {
    this.put(a, 8, (d) => {
      d.setUint32(0, lo >>> 0, true);
      d.setUint32(4, hi >>> 0, true);
    });
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

/** Guest pages [base, base + pages * 4K) handed out in order, zeroed; never reused (a guest's tables live as long as the scenario). */
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
