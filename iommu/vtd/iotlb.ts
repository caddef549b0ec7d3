/**
 * The IOTLB (VT-d spec §6.2.4 "IOTLB"): translations tagged by domain ID and
 * PASID, of 4 KiB, 2 MiB or 1 GiB pages, with LRU replacement over a fixed
 * number of entries. Entries are never updated behind software's back: they
 * leave only by eviction or by an invalidation.
 *
 * Layout for a fast, allocation-free hit: one bucket per (DID, PASID) tag,
 * each a Map keyed by the number `pageIndex * 4 + sizeCode` (pageIndex is
 * the 4 KiB frame number of the page base, < 2^45, so keys stay exact).
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
}

export class IotlbBucket {
  readonly map = new Map<number, IotlbEntry>();
  /** Entries per size code, so a lookup skips sizes the bucket does not hold. */
  readonly perSize = new Int32Array(3);
  constructor(
    readonly did: number,
    readonly pasid: number,
    /** Spreads the buckets over the IOTLB's direct-mapped front. */
    readonly salt = 0,
  ) {}
}

const FRONT_SLOTS = 4096;
const FRONT_MASK = FRONT_SLOTS - 1;

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
  /**
   * A direct-mapped front of the buckets' Maps (slot from the key and the
   * bucket's salt): most hits find their entry without hashing. It only holds
   * live entries (insert fills a slot, remove clears it), so it changes
   * nothing but speed; a collision falls back to the Map.
   */
  private readonly front: (IotlbEntry | undefined)[] = new Array<IotlbEntry | undefined>(FRONT_SLOTS).fill(undefined);

  constructor(
    readonly capacity: number,
    private readonly c: IotlbCounters,
  ) {
    this.head.prev = this.head;
    this.head.next = this.head;
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
    if (ps[0]! > 0) {
      const key = frame * 4;
      const f = this.front[(key + b.salt) & FRONT_MASK];
      e = f !== undefined && f.key === key && f.bucket === b ? f : b.map.get(key);
    }
    if (e === undefined && ps[1]! > 0) e = b.map.get((frame - (frame % 512)) * 4 + 1);
    if (e === undefined && ps[2]! > 0) e = b.map.get((frame - (frame % 262144)) * 4 + 2);
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
    const old = b.map.get(key);
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
    b.map.set(key, e);
    this.front[(key + b.salt) & FRONT_MASK] = e;
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
    if (b.map.size === 0) return 0;
    const end = addr + bytes;
    let n = 0;
    for (const e of [...b.map.values()]) {
      if ((e.kind & kinds) === 0 || (e.global && !withGlobal)) continue;
      if (e.iova >= end || e.iova + e.size <= addr) continue;
      this.remove(e);
      n++;
    }
    return n;
  }

  private remove(e: IotlbEntry): void {
    const b = e.bucket!;
    b.map.delete(e.key);
    const slot = (e.key + b.salt) & FRONT_MASK;
    if (this.front[slot] === e) this.front[slot] = undefined;
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
