import type { GuestRam } from './guest-ram.ts';

/** Access sizes a device register file handles itself. */
export type AccessSize = 1 | 2 | 4;

/**
 * A device's MMIO handlers (QEMU's MemoryRegionOps). Offsets are relative to
 * the region. Values are u32 numbers: an 8-byte access to a region is split
 * into two 4-byte accesses, low half first, as a 32-bit interconnect would,
 * unless the handlers take 8-byte accesses whole (read64/write64: QEMU's
 * impl.max_access_size = 8), as a device that decodes the access size does.
 */
export interface MmioOps {
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
  /** One 8-byte read (an aligned access the region's rules accept). */
  read64?(offset: number): bigint;
  /** One 8-byte write. */
  write64?(offset: number, value: bigint): void;
}

export interface MmioAccessRules {
  /** Smallest access the region accepts (default 1). */
  minAccess?: 1 | 2 | 4 | 8;
  /** Largest access the region accepts (default 8). */
  maxAccess?: 1 | 2 | 4 | 8;
  /** Accept accesses not aligned to their size (default false). */
  unaligned?: boolean;
}

export type RegionKind = 'ram' | 'mmio' | 'container' | 'alias';

interface Subregion {
  region: MemoryRegion;
  addr: number;
  priority: number;
}

/**
 * A node of the memory map (QEMU's MemoryRegion): RAM backed by a GuestRam
 * window, MMIO served by handlers, a container of subregions placed at offsets
 * with priorities, or an alias of part of another region. Subregions may
 * overlap; the higher priority wins, and among equal priorities the one added
 * last. A disabled region is invisible, letting whatever is below show through
 * (how a BAR disappears when memory decoding is turned off).
 */
export class MemoryRegion {
  readonly name: string;
  readonly kind: RegionKind;
  size: number;
  enabled = true;
  readonly ram?: GuestRam;
  readonly ramOffset: number;
  readonly ops?: MmioOps;
  readonly rules: Required<MmioAccessRules>;
  readonly aliasOf?: MemoryRegion;
  readonly aliasOffset: number;
  private readonly subs: Subregion[] = [];
  private parent?: MemoryRegion;
  private readonly aliasedBy = new Set<MemoryRegion>();
  private readonly changeListeners = new Set<() => void>();

  private constructor(init: {
    name: string;
    kind: RegionKind;
    size: number;
    ram?: GuestRam;
    ramOffset?: number;
    ops?: MmioOps;
    rules?: MmioAccessRules;
    aliasOf?: MemoryRegion;
    aliasOffset?: number;
  }) {
    if (!Number.isSafeInteger(init.size) || init.size <= 0) {
      throw new RangeError(`region ${init.name}: size must be a positive integer, got ${init.size}`);
    }
    this.name = init.name;
    this.kind = init.kind;
    this.size = init.size;
    if (init.ram !== undefined) this.ram = init.ram;
    this.ramOffset = init.ramOffset ?? 0;
    if (init.ops !== undefined) this.ops = init.ops;
    this.rules = { minAccess: 1, maxAccess: 8, unaligned: false, ...init.rules };
    if (init.aliasOf !== undefined) this.aliasOf = init.aliasOf;
    this.aliasOffset = init.aliasOffset ?? 0;
  }

  static ram(name: string, ram: GuestRam, offset = 0, size = ram.size - offset): MemoryRegion {
    if (offset < 0 || offset + size > ram.size) {
      throw new RangeError(`region ${name}: window [${offset}, +${size}) exceeds the RAM block`);
    }
    return new MemoryRegion({ name, kind: 'ram', size, ram, ramOffset: offset });
  }

  static mmio(name: string, size: number, ops: MmioOps, rules: MmioAccessRules = {}): MemoryRegion {
    return new MemoryRegion({ name, kind: 'mmio', size, ops, rules });
  }

  static container(name: string, size: number): MemoryRegion {
    return new MemoryRegion({ name, kind: 'container', size });
  }

  static alias(name: string, target: MemoryRegion, offset: number, size: number): MemoryRegion {
    const mr = new MemoryRegion({ name, kind: 'alias', size, aliasOf: target, aliasOffset: offset });
    target.aliasedBy.add(mr);
    return mr;
  }

  /** Forget an alias: it stops following its target (call when it is discarded). */
  dispose(): void {
    this.aliasOf?.aliasedBy.delete(this);
  }

  /**
   * Subregions, highest priority first and, among equal priorities, the one
   * added last first (the order in which they hide each other). Kept in that
   * order as they are added: every re-render of an address space reads it.
   */
  subregions(): readonly { readonly region: MemoryRegion; readonly addr: number; readonly priority: number }[] {
    return this.subs;
  }

  addSubregion(addr: number, region: MemoryRegion, priority = 0): this {
    if (this.kind !== 'container') throw new Error(`${this.name} is not a container`);
    if (region.parent !== undefined) throw new Error(`${region.name} already belongs to ${region.parent.name}`);
    if (!Number.isSafeInteger(addr) || addr < 0) throw new RangeError(`bad subregion address ${addr}`);
    region.parent = this;
    // Before every subregion of the same or a lower priority: the newest wins among equals.
    let at = 0;
    while (at < this.subs.length && this.subs[at]!.priority > priority) at++;
    this.subs.splice(at, 0, { region, addr, priority });
    this.changed();
    return this;
  }

  removeSubregion(region: MemoryRegion): void {
    const i = this.subs.findIndex((s) => s.region === region);
    if (i < 0) return;
    this.subs.splice(i, 1);
    region.parent = undefined;
    this.changed();
  }

  /** Where this region sits in its parent, or undefined when it has none. */
  get address(): number | undefined {
    return this.parent?.subs.find((s) => s.region === this)?.addr;
  }

  /** Move this region inside its parent (a BAR being reprogrammed). */
  setAddress(addr: number): void {
    const s = this.parent?.subs.find((x) => x.region === this);
    if (s === undefined || s.addr === addr) return;
    s.addr = addr;
    this.changed();
  }

  setEnabled(enabled: boolean): void {
    if (this.enabled === enabled) return;
    this.enabled = enabled;
    this.changed();
  }

  /** Called whenever what this region shows changes (for address spaces built on it). */
  onChange(fn: () => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.changeListeners) fn();
    for (const a of this.aliasedBy) a.changed();
    this.parent?.changed();
  }
}
