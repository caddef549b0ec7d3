/**
 * The IOTLB (VT-d spec §6.2.4 "IOTLB"): translations tagged by domain ID and
 * PASID, of 4 KiB, 2 MiB or 1 GiB pages, with LRU replacement over a fixed
 * number of entries. Entries are never updated behind software's back: they
 * leave only by eviction or by an invalidation.
 *
 * Layout for a fast, allocation-free hit: one bucket per (DID, PASID) tag,
 * its entries keyed by the number `pageIndex * 4 + sizeCode` (pageIndex is
 * the 4 KiB frame number of the page base, < 2^45, so keys stay exact) in a
 * hash table shared by all buckets (chained through the entries; a
 * bucket's entries are also on a list of its own, for invalidation).
 * Not a Map per bucket: a full IOTLB replaces an entry per miss, and a
 * Map's delete and set of number keys cost more than the chain walk.
 * Entry objects are pooled and reused after eviction or invalidation.
 */
import type { Counter } from '../../src/trace/counters.ts';

/** What produced an entry; invalidation descriptors act on some kinds only. */
export const KIND_SS = 1; // legacy or PGTT second-stage-only
export const KIND_FS = 2; // PGTT first-stage-only
export const KIND_NESTED = 4; // PGTT nested

export const PAGE_SIZES: readonly number[] = [4096, 2 ** 21, 2 ** 30];

export class IotlbEntry {
  bucket: IotlbBucket | null = null;
  key = 0;
  sizeCode = 0;
  iova = 0;
  size = 0;
  pa = 0;
  /** PERM_* bits (iommu/pgtable/types.ts). */
  perms = 0;
  /** First-stage G = 1 (survives PASID-selective non-global invalidation). */
  global = false;
  kind = 0;
  /** The output range touches the interrupt address range: hits must check the address. */
  irqOverlap = false;
  prev: IotlbEntry | null = null;
  next: IotlbEntry | null = null;
  /** The next entry of its hash slot. */
  chain: IotlbEntry | null = null;
  /** Neighbours on its bucket's list. */
  bprev: IotlbEntry | null = null;
  bnext: IotlbEntry | null = null;
}

export class IotlbBucket {
  /** The bucket's entries: a list through them, newest first (null when it holds none). */
  first: IotlbEntry | null = null;
  /** Entries per size code, so a lookup skips sizes the bucket does not hold. */
  readonly perSize = new Int32Array(3);
  constructor(
    readonly did: number,
    readonly pasid: number,
    /** Spreads the buckets over the IOTLB's hash slots. */
    readonly salt = 0,
  ) {}
}

/** Hash slots at least (more for a larger IOTLB: about two per entry). */
const MIN_SLOTS = 4096;

export interface IotlbCounters {
  hit: Counter;
  miss: Counter;
  evict: Counter;
  invalidated: Counter;
}

export class Iotlb {
  private readonly buckets = new Map<number, IotlbBucket>();
  private readonly byDid = new Map<number, IotlbBucket[]>();
  /** LRU list: head.next is the most recently used, head.prev the least. */
  private readonly head = new IotlbEntry();
  private readonly pool: IotlbEntry[] = [];
  private count = 0;
  /** Hash slots (slot from the key and the bucket's salt), chained through the entries. */
  private readonly slots: (IotlbEntry | null)[];
  private readonly slotMask: number;

  constructor(
    readonly capacity: number,
    private readonly c: IotlbCounters,
  ) {
    this.head.prev = this.head;
    this.head.next = this.head;
    let n = MIN_SLOTS;
    while (n < 2 * capacity && n < 2 ** 24) n *= 2;
    this.slots = new Array<IotlbEntry | null>(n).fill(null);
    this.slotMask = n - 1;
  }

  /** Bucket `b`'s entry under `key`, if any. */
  private find(b: IotlbBucket, key: number): IotlbEntry | undefined {
    for (let e: IotlbEntry | null = this.slots[(key + b.salt) & this.slotMask]!; e !== null; e = e.chain) {
      if (e.key === key && e.bucket === b) return e;
    }
    return undefined;
  }

  get size(): number {
    return this.count;
  }

  /** The bucket of a tag (created once and kept; callers may hold it). `pasid` -1 = none (legacy). */
  bucket(did: number, pasid: number): IotlbBucket {
    const tag = did * 0x20_0000 + (pasid + 1);
    let b = this.buckets.get(tag);
    if (b === undefined) {
      b = new IotlbBucket(did, pasid, this.buckets.size * 0x9e1);
      this.buckets.set(tag, b);
      let list = this.byDid.get(did);
      if (list === undefined) this.byDid.set(did, (list = []));
      list.push(b);
    }
    return b;
  }

  /** The entry translating `addr` in bucket `b`, made most recently used; counts the hit or miss. */
  lookup(b: IotlbBucket, addr: number): IotlbEntry | undefined {
    const frame = Math.floor(addr / 4096);
    const ps = b.perSize;
    let e: IotlbEntry | undefined;
    if (ps[0]! > 0) e = this.find(b, frame * 4);
    if (e === undefined && ps[1]! > 0) e = this.find(b, (frame - (frame % 512)) * 4 + 1);
    if (e === undefined && ps[2]! > 0) e = this.find(b, (frame - (frame % 262144)) * 4 + 2);
    if (e === undefined) {
      this.c.miss.value++;
      return undefined;
    }
    this.c.hit.value++;
    if (this.head.next !== e) {
      this.unlink(e);
      this.linkFront(e);
    }
    return e;
  }

  /** Cache a translation of one page (iova/pa aligned to size); replaces an entry with the same key. */
  insert(b: IotlbBucket, iova: number, size: number, pa: number, perms: number, global: boolean, kind: number, irqOverlap: boolean): IotlbEntry {
    const code = size >= PAGE_SIZES[2]! ? 2 : size >= PAGE_SIZES[1]! ? 1 : 0;
    const key = Math.floor(iova / 4096) * 4 + code;
    const old = this.find(b, key);
    if (old !== undefined) this.remove(old);
    while (this.count >= this.capacity && this.head.prev !== this.head) {
      this.remove(this.head.prev!);
      this.c.evict.value++;
    }
    const e = this.pool.pop() ?? new IotlbEntry();
    e.bucket = b;
    e.key = key;
    e.sizeCode = code;
    e.iova = iova;
    e.size = size;
    e.pa = pa;
    e.perms = perms;
    e.global = global;
    e.kind = kind;
    e.irqOverlap = irqOverlap;
    const slot = (key + b.salt) & this.slotMask;
    e.chain = this.slots[slot]!;
    this.slots[slot] = e;
    e.bprev = null;
    e.bnext = b.first;
    if (b.first !== null) b.first.bprev = e;
    b.first = e;
    b.perSize[code]!++;
    this.linkFront(e);
    this.count++;
    return e;
  }

  /** Drop every entry. */
  invalidateAll(): number {
    let n = 0;
    while (this.head.next !== this.head) {
      this.remove(this.head.next!);
      n++;
    }
    this.c.invalidated.value += n;
    return n;
  }

  /** Drop the entries of domain `did` whose kind is in `kinds`. */
  invalidateDomain(did: number, kinds: number): number {
    let n = 0;
    for (const b of this.byDid.get(did) ?? []) n += this.sweep(b, kinds, 0, Infinity, true);
    this.c.invalidated.value += n;
    return n;
  }

  /** Drop entries of `did` of `kinds` overlapping [addr, addr + bytes). */
  invalidateDomainRange(did: number, kinds: number, addr: number, bytes: number): number {
    let n = 0;
    for (const b of this.byDid.get(did) ?? []) n += this.sweep(b, kinds, addr, bytes, true);
    this.c.invalidated.value += n;
    return n;
  }

  /** Drop entries of (did, pasid) of `kinds` overlapping [addr, addr + bytes); global ones only if `withGlobal`. */
  invalidatePasid(did: number, pasid: number, kinds: number, addr: number, bytes: number, withGlobal: boolean): number {
    const b = this.buckets.get(did * 0x20_0000 + (pasid + 1));
    const n = b === undefined ? 0 : this.sweep(b, kinds, addr, bytes, withGlobal);
    this.c.invalidated.value += n;
    return n;
  }

  private sweep(b: IotlbBucket, kinds: number, addr: number, bytes: number, withGlobal: boolean): number {
    const end = addr + bytes;
    let n = 0;
    for (let e = b.first, next: IotlbEntry | null; e !== null; e = next) {
      next = e.bnext;
      if ((e.kind & kinds) === 0 || (e.global && !withGlobal)) continue;
      if (e.iova >= end || e.iova + e.size <= addr) continue;
      this.remove(e);
      n++;
    }
    return n;
  }

  private remove(e: IotlbEntry): void {
    const b = e.bucket!;
    const slot = (e.key + b.salt) & this.slotMask;
    if (this.slots[slot] === e) this.slots[slot] = e.chain;
    else {
      for (let p: IotlbEntry | null = this.slots[slot]!; p !== null; p = p.chain) {
        if (p.chain === e) {
          p.chain = e.chain;
          break;
        }
      }
    }
    e.chain = null;
    if (e.bprev === null) b.first = e.bnext;
    else e.bprev.bnext = e.bnext;
    if (e.bnext !== null) e.bnext.bprev = e.bprev;
    e.bprev = null;
    e.bnext = null;
    b.perSize[e.sizeCode]!--;
    this.unlink(e);
    e.bucket = null;
    this.count--;
    this.pool.push(e);
  }

  private unlink(e: IotlbEntry): void {
    e.prev!.next = e.next;
    e.next!.prev = e.prev;
    e.prev = null;
    e.next = null;
  }

  private linkFront(e: IotlbEntry): void {
    const h = this.head;
    e.prev = h;
    e.next = h.next;
    h.next!.prev = e;
    h.next = e;
  }
}
