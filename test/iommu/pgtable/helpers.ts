/**
 * Test fixtures for the page-table formats: a sparse guest RAM, a table-page
 * allocator that checks every free against its allocations and can be told
 * to fail, and helpers to poke 64-bit descriptors.
 */
import { GuestRam } from '../../../src/memory/guest-ram.ts';
import type { TablePageAllocator } from '../../../src/iommu-core/io-pgtable.ts';

export { GuestRam };

/** Bump allocator with per-size free lists over [base, limit) of `ram`. */
export class TestAllocator implements TablePageAllocator {
  readonly live = new Map<number, number>();
  allocCalls = 0;
  /** Fail the allocation call with this 1-based number (and only it). */
  failOnCall = 0;
  /** Fail every allocation once this many have been made. */
  failAfter = Infinity;
  readonly errors: string[] = [];
  private next: number;
  private readonly freeLists = new Map<number, number[]>();

  constructor(
    private readonly ram: GuestRam,
    base: number,
    private readonly limit: number,
  ) {
    this.next = base;
  }

  alloc(bytes: number): number | undefined {
    this.allocCalls++;
    if (this.allocCalls === this.failOnCall || this.live.size >= this.failAfter) return undefined;
    if (!Number.isInteger(Math.log2(bytes)) || bytes < 8) {
      this.errors.push(`alloc of ${bytes} bytes`);
      return undefined;
    }
    let pa = this.freeLists.get(bytes)?.pop();
    if (pa === undefined) {
      const aligned = Math.ceil(this.next / bytes) * bytes;
      if (aligned + bytes > this.limit) return undefined;
      pa = aligned;
      this.next = aligned + bytes;
    }
    this.ram.fill(pa, 0, bytes);
    this.live.set(pa, bytes);
    return pa;
  }

  free(pa: number, bytes: number): void {
    const had = this.live.get(pa);
    if (had !== bytes) {
      this.errors.push(`free(0x${pa.toString(16)}, ${bytes}) but live size is ${String(had)}`);
      return;
    }
    this.live.delete(pa);
    let l = this.freeLists.get(bytes);
    if (l === undefined) this.freeLists.set(bytes, (l = []));
    l.push(pa);
  }

  get liveCount(): number {
    return this.live.size;
  }
}

export function put64(ram: GuestRam, addr: number, v: bigint): void {
  ram.write64(addr, v);
}

export function get64(ram: GuestRam, addr: number): bigint {
  return ram.read64(addr);
}

/** Bit n as a bigint. */
export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/** 52-bit RAM: every address a format can produce is backed (sparse, so free). */
export function bigRam(): GuestRam {
  return new GuestRam(2 ** 52);
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;
