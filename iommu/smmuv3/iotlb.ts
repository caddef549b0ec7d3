/**
 * The SMMU TLB (§3.17 "TLB tagging, VMIDs, ASIDs", §4.4 "TLB invalidation"):
 * leaf translations of stage 1 (VA → IPA or PA, tagged by VMID and ASID, or
 * by VMID alone for global entries) and of stage 2 (IPA → PA, tagged by
 * VMID). Nested translations are cached as their two parts, so TLBI_S2_IPA
 * reaches the stage 2 half and TLBI_NH_* the stage 1 half.
 *
 * Lookup is allocation-free: a hash table (chains through the entries)
 * keyed by one number combining an interned tag, the leaf size and the input
 * frame number, probed once per leaf size present. Replacement is least-recently-used (an intrusive list). At most
 * 1024 distinct tags are live: interning the 1025th flushes the TLB (a
 * documented over-invalidation).
 */
import type { Counter } from '../../src/trace/counters.ts';
import { remPow2 } from '../pgtable/walk-common.ts';

export const TLB_S1 = 0;
export const TLB_S2 = 1;
/** The ASID of a global (nG == 0) stage 1 entry: matches every ASID of its VMID. */
export const ASID_GLOBAL = 0x1_0000;

const MAX_TAGS = 1024;
const TAG_MUL = 2 ** 43;
const SLOT_MUL = 2 ** 40;
const IA_LIMIT = 2 ** 52;
/** Leaf sizes (log2) the VMSAv8-64 formats produce → key slot (at most 8). */
const SIZE_SLOT = new Int8Array(64).fill(-1);
for (const [i, s] of [12, 14, 16, 21, 25, 29, 30, 42].entries()) SIZE_SLOT[s] = i;
const POW2: readonly number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);
/** Hash buckets at least (more for a larger TLB: about two per entry). */
const MIN_BUCKETS = 4096;

export class IotlbEntry {
  key = 0;
  kind = 0;
  vmid = 0;
  asid = 0;
  /** Input base (aligned to size) and output base. */
  ia = 0;
  oa = 0;
  size = 0;
  perms = 0;
  /** Lookup level of the leaf and the granule of its table (for TTL/TG-scoped invalidation). */
  level = 0;
  granule = 0;
  /** Leaf attributes (stage 2 MemAttr for S2PTW checks). */
  attrs = 0;
  prev: IotlbEntry | null = null;
  next: IotlbEntry | null = null;
  /** The next entry of its hash bucket. */
  chain: IotlbEntry | null = null;
}

/** What an invalidation matches; one instance is reused by the command processor. */
export class TlbMatch {
  /** Bit 0: stage 1 entries, bit 1: stage 2 entries. */
  kinds = 3;
  vmid = -1;
  asid = -1;
  /** With `asid` set: do global entries match too (TLBI_NH_VA) or not (TLBI_NH_ASID)? */
  globals = false;
  lo = 0;
  hi = Infinity;
  granule = 0;
  level = 0;

  reset(kinds: number): this {
    this.kinds = kinds;
    this.vmid = -1;
    this.asid = -1;
    this.globals = false;
    this.lo = 0;
    this.hi = Infinity;
    this.granule = 0;
    this.level = 0;
    return this;
  }

  matches(e: IotlbEntry): boolean {
    if ((this.kinds & (1 << e.kind)) === 0) return false;
    if (this.vmid >= 0 && e.vmid !== this.vmid) return false;
    if (this.asid >= 0 && e.asid !== this.asid && !(this.globals && e.asid === ASID_GLOBAL)) return false;
    if (e.ia + e.size <= this.lo || e.ia >= this.hi) return false;
    if (this.granule !== 0 && e.granule !== this.granule) return false;
    return this.level === 0 || e.level === this.level;
  }
}

export interface IotlbCounters {
  hit: Counter;
  miss: Counter;
  insert: Counter;
  evict: Counter;
  invalidate: Counter;
}

export class Iotlb {
  /** Bumped when tags are reset: holders of tag ids re-intern. */
  epoch = 0;
  /** Global stage 1 entries present (lookups skip the global probe when 0). */
  globals = 0;
  /**
   * The entries by key: bucket = low bits of the key, chained through the
   * entries. Not a Map: a full TLB replaces an entry per miss, and a Map's
   * delete and set of a number key (beyond 31 bits here) cost more than the
   * walk they save.
   */
  private readonly buckets: (IotlbEntry | null)[];
  private readonly bucketMask: number;
  private count = 0;
  private readonly tags = new Map<number, number>();
  private readonly sizeCount = new Uint32Array(8);
  private readonly present: number[] = [];
  private head: IotlbEntry | null = null;
  private tail: IotlbEntry | null = null;

  constructor(
    readonly capacity: number,
    private readonly c: IotlbCounters,
  ) {
    let n = MIN_BUCKETS;
    while (n < 2 * capacity && n < 2 ** 24) n *= 2;
    this.buckets = new Array<IotlbEntry | null>(n).fill(null);
    this.bucketMask = n - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The entry cached under `key`, if any. */
  private find(key: number): IotlbEntry | undefined {
    for (let e: IotlbEntry | null = this.buckets[key & this.bucketMask]!; e !== null; e = e.chain) if (e.key === key) return e;
    return undefined;
  }

  /** The tag of a translation regime: kind, VMID, ASID (ASID_GLOBAL for global entries). */
  static tagKey(kind: number, vmid: number, asid: number): number {
    return kind + 2 * (vmid + 0x10000 * asid);
  }

  intern(tagKey: number): number {
    let id = this.tags.get(tagKey);
    if (id === undefined) {
      if (this.tags.size >= MAX_TAGS) this.flush();
      id = this.tags.size;
      this.tags.set(tagKey, id);
    }
    return id;
  }

  /**
   * The entry translating `ia` under tag `tagId`, or else under `altTagId`
   * (the global tag of a stage 1 regime, -1 for none); counts one hit or miss.
   */
  lookup(tagId: number, ia: number, altTagId = -1): IotlbEntry | undefined {
    const e = this.probe(tagId, ia) ?? (altTagId >= 0 && this.globals > 0 ? this.probe(altTagId, ia) : undefined);
    if (e === undefined) this.c.miss.value++;
    else {
      this.touch(e);
      this.c.hit.value++;
    }
    return e;
  }

  private probe(tagId: number, ia: number): IotlbEntry | undefined {
    if (ia < IA_LIMIT) {
      const base = tagId * TAG_MUL;
      const p = this.present;
      for (let i = 0; i < p.length; i++) {
        const s = p[i]!;
        const key = base + SIZE_SLOT[s]! * SLOT_MUL + Math.floor(ia / POW2[s]!);
        for (let e: IotlbEntry | null = this.buckets[key & this.bucketMask]!; e !== null; e = e.chain) if (e.key === key) return e;
      }
    }
    return undefined;
  }

  /** Cache a leaf: `ia` maps to `oa` within a 2^shift-byte page. Sizes outside the formats' set are not cached. */
  insert(tagId: number, kind: number, vmid: number, asid: number, ia: number, oa: number, shift: number, perms: number, level: number, granule: number, attrs: number): void {
    const slot = SIZE_SLOT[shift] ?? -1;
    if (slot < 0 || ia >= IA_LIMIT) return;
    const size = POW2[shift]!;
    const off = remPow2(ia, size);
    const key = tagId * TAG_MUL + slot * SLOT_MUL + (ia - off) / size;
    let e = this.find(key);
    if (e === undefined) {
      let spare: IotlbEntry | undefined;
      if (this.count >= this.capacity && this.tail !== null) {
        spare = this.tail;
        this.remove(spare);
        this.c.evict.value++;
      }
      // The evicted entry is unreferenced now (entries() hands out the live ones): reuse it.
      e = spare ?? new IotlbEntry();
      e.key = key;
      const b = key & this.bucketMask;
      e.chain = this.buckets[b]!;
      this.buckets[b] = e;
      this.count++;
      this.link(e);
      if (this.sizeCount[slot]!++ === 0) this.rebuildPresent();
      this.c.insert.value++;
    } else {
      if (e.asid === ASID_GLOBAL) this.globals--;
      this.touch(e);
    }
    e.kind = kind;
    e.vmid = vmid;
    e.asid = asid;
    e.ia = ia - off;
    e.oa = oa - off;
    e.size = size;
    e.perms = perms;
    e.level = level;
    e.granule = granule;
    e.attrs = attrs;
    if (asid === ASID_GLOBAL) this.globals++;
  }

  /** Drop every entry `m` matches; returns how many. */
  invalidate(m: TlbMatch): number {
    let n = 0;
    for (let e = this.head; e !== null; ) {
      const next = e.next;
      if (m.matches(e)) {
        this.remove(e);
        n++;
      }
      e = next;
    }
    this.c.invalidate.value += n;
    return n;
  }

  /** Drop everything and forget the tags. */
  flush(): number {
    const n = this.count;
    this.buckets.fill(null);
    this.count = 0;
    this.tags.clear();
    this.sizeCount.fill(0);
    this.present.length = 0;
    this.head = this.tail = null;
    this.globals = 0;
    this.epoch++;
    this.c.invalidate.value += n;
    return n;
  }

  /** Entries, most recently used first (for tests and debugging). */
  entries(): IotlbEntry[] {
    const out: IotlbEntry[] = [];
    for (let e = this.head; e !== null; e = e.next) out.push(e);
    return out;
  }

  private remove(e: IotlbEntry): void {
    const b = e.key & this.bucketMask;
    if (this.buckets[b] === e) this.buckets[b] = e.chain;
    else for (let p: IotlbEntry | null = this.buckets[b]!; p !== null; p = p.chain) if (p.chain === e) {
      p.chain = e.chain;
      break;
    }
    e.chain = null;
    this.count--;
    this.unlink(e);
    if (e.asid === ASID_GLOBAL) this.globals--;
    const slot = SIZE_SLOT[Math.log2(e.size)]!;
    if (--this.sizeCount[slot]! === 0) this.rebuildPresent();
  }

  private rebuildPresent(): void {
    this.present.length = 0;
    for (let s = 0; s < 64; s++) {
      const slot = SIZE_SLOT[s]!;
      if (slot >= 0 && this.sizeCount[slot]! > 0) this.present.push(s);
    }
  }

  private link(e: IotlbEntry): void {
    e.prev = null;
    e.next = this.head;
    if (this.head !== null) this.head.prev = e;
    this.head = e;
    if (this.tail === null) this.tail = e;
  }

  private unlink(e: IotlbEntry): void {
    if (e.prev !== null) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = null;
  }

  private touch(e: IotlbEntry): void {
    if (this.head === e) return;
    this.unlink(e);
    this.link(e);
  }
}
