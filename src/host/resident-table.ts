/**
 * The resident pages of an mm: for each mapped unit (the page-size-aligned
 * VA of a base or huge page) the physical head of the run backing it (what
 * the PTE points at). A two-level table, as a page table is: 2 MiB of VA per
 * leaf of 512 slots (one per 4 KiB; a huge page's unit is its first slot),
 * the leaves found by their 2 MiB index, the last one used kept at hand.
 *
 * Not a Map of VA to head: the page-fault path asks about a page that is
 * not there (a miss in a growing hash table keyed by numbers beyond 31 bits)
 * and then adds it, once per fault; neighbouring faults land in one leaf.
 * Iteration order is not kept (nothing asks for it). A leaf goes when its
 * last unit does (a long run maps and unmaps over ever new VA), as the
 * kernel frees an empty page-table page (free_pgtables).
 */
const SLOTS = 512;
/** A leaf's element past its slots: how many of them hold a unit. */
const USED = SLOTS;
const LEAF_SPAN = 4096 * SLOTS;
const NONE = -1;

export class ResidentTable {
  private readonly leaves = new Map<number, Float64Array>();
  private lastIndex = NaN;
  private last: Float64Array | undefined = undefined;
  private count = 0;

  private leaf(unit: number, create: boolean): Float64Array | undefined {
    const li = Math.floor(unit / LEAF_SPAN);
    if (li === this.lastIndex) return this.last;
    let l = this.leaves.get(li);
    if (l === undefined) {
      if (!create) return undefined;
      l = new Float64Array(SLOTS + 1).fill(NONE, 0, SLOTS);
      this.leaves.set(li, l);
    }
    this.lastIndex = li;
    this.last = l;
    return l;
  }

  /** Slot of `unit` in its leaf; -1 when `unit` is not a whole 4 KiB-aligned address. */
  private static slot(unit: number): number {
    // Divisions by powers of two (exact), not `%` on a double (a runtime call).
    const li = Math.floor(unit / LEAF_SPAN);
    const s = (unit - li * LEAF_SPAN) / 4096;
    return s === Math.floor(s) && s >= 0 ? s : -1;
  }

  get size(): number {
    return this.count;
  }

  get(unit: number): number | undefined {
    const s = ResidentTable.slot(unit);
    if (s < 0) return undefined;
    const l = this.leaf(unit, false);
    if (l === undefined) return undefined;
    const v = l[s]!;
    return v === NONE ? undefined : v;
  }

  has(unit: number): boolean {
    return this.get(unit) !== undefined;
  }

  /** `head` must be a physical address (>= 0); `unit` 4 KiB-aligned. */
  set(unit: number, head: number): this {
    const s = ResidentTable.slot(unit);
    if (s < 0 || !(head >= 0)) throw new RangeError(`resident entry 0x${unit.toString(16)} -> ${head}`);
    const l = this.leaf(unit, true)!;
    if (l[s] === NONE) {
      this.count++;
      l[USED]!++;
    }
    l[s] = head;
    return this;
  }

  delete(unit: number): boolean {
    const s = ResidentTable.slot(unit);
    if (s < 0) return false;
    const l = this.leaf(unit, false);
    if (l === undefined || l[s] === NONE) return false;
    l[s] = NONE;
    this.count--;
    if (--l[USED]! === 0) {
      const li = Math.floor(unit / LEAF_SPAN);
      this.leaves.delete(li);
      if (li === this.lastIndex) {
        this.lastIndex = NaN;
        this.last = undefined;
      }
    }
    return true;
  }

  /** Leaves held (each 2 MiB of VA with a resident unit in it). */
  get leafCount(): number {
    return this.leaves.size;
  }

  /** The resident units (in no particular order). */
  *keys(): IterableIterator<number> {
    for (const [li, l] of this.leaves) {
      for (let s = 0; s < SLOTS; s++) if (l[s] !== NONE) yield li * LEAF_SPAN + s * 4096;
    }
  }
}
