import type { AtsTranslation } from '../../src/pci/ats-messages.ts';
import type { Counter, Counters } from '../../src/trace/counters.ts';
import type { Tracer } from '../../src/trace/tracer.ts';

const F_VALID = 1;
const F_R = 2;
const F_W = 4;
const F_X = 8;
const F_U = 16;
const F_G = 32;
const F_PRIV = 64;

/** One ATC entry as tests and traces see it. */
export interface AtcEntry {
  pasid: number;
  priv: boolean;
  global: boolean;
  untranslatedAddr: number;
  size: number;
  translatedAddr: number;
  read: boolean;
  write: boolean;
  exec: boolean;
  untranslatedOnly: boolean;
}

/**
 * The device's Address Translation Cache: translations from ATS Translation
 * Completions, each tagged with the PASID (-1: none) and the privilege of the
 * request that fetched it; a Global entry also serves every other PASID.
 * Entries keep the size and permissions the completion gave.
 *
 * Fully associative, `capacity` entries in typed arrays (no allocation on a
 * lookup or a fill); replacement is LRU. A fill first drops entries of the
 * same tag that overlap it, so lookups never see two answers, and takes the
 * lowest free slot. Invalidation (PCIe 10.3.8, and Linux's reading of it in
 * arm_smmu_atc_inv_to_cmd): a request without PASID drops every entry in the
 * range whatever its PASID; one with Global Invalidate (when supported) too;
 * one with a PASID drops that PASID's entries and the Global entries in the
 * range (dropping more than asked is always allowed).
 *
 * Finding an entry: a direct-mapped memo of earlier answers by 4 KiB page
 * and tag first (emptied whenever an entry is added or dropped, and filled
 * only while every entry covers whole pages, so what it holds is exactly
 * what the search below would answer for any address of the page: a
 * descriptor's pages hit it, one compare each), then a hash of the entry's base page
 * (every PASID's entries in one chain, so Global ones are found too)
 * probed once per entry size present. ATS entries are
 * naturally aligned powers of two (PCIe 10.2.3; translation.ts refuses
 * others); should another shape be inserted, lookups scan every slot as long
 * as it is cached. Either way the answer is the lowest slot covering the
 * address, as a scan in slot order gives. Recency is a doubly linked list
 * (head: most recent), so the victim is found without a scan.
 */
export class Atc {
  readonly capacity: number;
  private readonly ua: Float64Array;
  private readonly size: Float64Array;
  private readonly pa: Float64Array;
  private readonly tag: Int32Array;
  private readonly flags: Uint8Array;
  /** find()'s answers by 4 KiB page number (-1: an empty line), tag ((pasid + 1) * 2 + priv) and slot, in MEMO lines indexed by the page's low bits. */
  private readonly memoPage = new Float64Array(MEMO).fill(-1);
  private readonly memoTag = new Int32Array(MEMO);
  private readonly memoSlot = new Int32Array(MEMO);
  // LRU list over valid slots.
  private readonly newer: Int32Array;
  private readonly older: Int32Array;
  private lruHead = -1;
  private lruTail = -1;
  // Free slots: bit set = free (lowest free slot first).
  private readonly freeBits: Int32Array;
  // Hash chains by base page of regular (aligned power-of-two) entries.
  private readonly bucketHead: Int32Array;
  private readonly chainNext: Int32Array;
  /** Bucket of an indexed slot, -1 for an irregular or free one. */
  private readonly bucketOf: Int32Array;
  private readonly hashShift: number;
  /** Indexed entries per log2(size), and the sizes present (ascending). */
  private readonly classCount = new Int32Array(64);
  private classes: number[] = [];
  /** Valid entries that are not naturally aligned powers of two of at least a page. */
  private irregular = 0;
  readonly hits: Counter;
  readonly misses: Counter;
  readonly fills: Counter;
  readonly evictions: Counter;
  readonly invalidated: Counter;

  constructor(
    capacity: number,
    counters: Counters,
    prefix: string,
    private readonly tracer: Tracer,
    private readonly source: string,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 0xffff) throw new RangeError(`bad ATC size ${capacity}`);
    this.capacity = capacity;
    this.ua = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.pa = new Float64Array(capacity);
    this.tag = new Int32Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.newer = new Int32Array(capacity);
    this.older = new Int32Array(capacity);
    this.freeBits = new Int32Array((capacity + 31) >>> 5);
    let bits = 4;
    while (1 << bits < 2 * capacity) bits++;
    this.hashShift = 32 - bits;
    this.bucketHead = new Int32Array(1 << bits);
    this.chainNext = new Int32Array(capacity);
    this.bucketOf = new Int32Array(capacity);
    this.clear();
    this.hits = counters.counter(`${prefix}.atc.hit`);
    this.misses = counters.counter(`${prefix}.atc.miss`);
    this.fills = counters.counter(`${prefix}.atc.fill`);
    this.evictions = counters.counter(`${prefix}.atc.evict`);
    this.invalidated = counters.counter(`${prefix}.atc.invalidated`);
  }

  private clear(): void {
    this.flags.fill(0);
    this.freeBits.fill(0);
    for (let j = 0; j < this.capacity; j++) this.freeBits[j >>> 5]! |= 1 << (j & 31);
    this.bucketHead.fill(-1);
    this.bucketOf.fill(-1);
    this.classCount.fill(0);
    this.classes = [];
    this.irregular = 0;
    this.lruHead = this.lruTail = -1;
    this.memoPage.fill(-1);
  }

  private covers(i: number, pasid: number, priv: boolean, addr: number): boolean {
    const f = this.flags[i]!;
    if ((f & F_VALID) === 0 || ((f & F_PRIV) !== 0) !== priv) return false;
    if (this.tag[i] !== pasid && ((f & F_G) === 0 || pasid < 0)) return false;
    const ua = this.ua[i]!;
    return addr >= ua && addr < ua + this.size[i]!;
  }

  private permits(i: number, write: boolean, exec: boolean): boolean {
    const f = this.flags[i]!;
    if ((f & F_U) !== 0) return true;
    if ((f & (write ? F_W : F_R)) === 0) return false;
    return !exec || (f & F_X) !== 0;
  }

  /** Bucket of the page number `pn` (< 2^41). */
  private bucket(pn: number): number {
    const lo = pn >>> 0;
    const hi = (pn / 0x1_0000_0000) | 0;
    return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> this.hashShift;
  }

  /** The lowest slot covering `addr` for this tag, or -1. */
  private find(pasid: number, priv: boolean, addr: number): number {
    let best = -1;
    if (this.irregular > 0) {
      for (let j = 0; j < this.capacity; j++) if (this.covers(j, pasid, priv, addr)) return j;
      return -1;
    }
    const classes = this.classes;
    for (let c = 0; c < classes.length; c++) {
      const s = POW2[classes[c]!]!;
      // The entry's base page (floor of a quotient by a power of two is exact; % of doubles is a slow call).
      const pn = Math.floor(addr / s) * (s / PAGE);
      for (let j = this.bucketHead[this.bucket(pn)]!; j >= 0; j = this.chainNext[j]!) {
        if ((best < 0 || j < best) && this.covers(j, pasid, priv, addr)) best = j;
      }
    }
    return best;
  }

  /**
   * The entry translating `addr` for this access, or -1 (a miss, counted;
   * an entry without the needed permission is a miss too: the device asks
   * again, as a write to a read-only translation must).
   */
  lookup(pasid: number, priv: boolean, addr: number, write: boolean, exec: boolean): number {
    const pn = Math.floor(addr / PAGE);
    // The page number's low bits pick the line (ToUint32 of an integer below 2^53 is exact modulo 2^32).
    const line = (pn >>> 0) & (MEMO - 1);
    const tag = (pasid + 1) * 2 + (priv ? 1 : 0);
    let i: number;
    if (this.memoPage[line] === pn && this.memoTag[line] === tag) {
      i = this.memoSlot[line]!;
    } else {
      i = this.find(pasid, priv, addr);
      // Only while every entry is regular (whole, aligned pages): then the answer holds for the whole page.
      if (i >= 0 && this.irregular === 0) {
        this.memoPage[line] = pn;
        this.memoTag[line] = tag;
        this.memoSlot[line] = i;
      }
    }
    if (i < 0 || !this.permits(i, write, exec)) {
      this.misses.value++;
      if (this.tracer.wants('dma-engine.atc.miss')) this.tracer.trace('dma-engine.atc.miss', this.source, { dev: this.source, pasid, addr, write });
      return -1;
    }
    this.touch(i);
    this.hits.value++;
    if (this.tracer.wants('dma-engine.atc.hit')) this.tracer.trace('dma-engine.atc.hit', this.source, { dev: this.source, pasid, addr, write });
    return i;
  }

  /** End (exclusive) of entry `i`'s untranslated range. */
  end(i: number): number {
    return this.ua[i]! + this.size[i]!;
  }

  untranslatedOnly(i: number): boolean {
    return (this.flags[i]! & F_U) !== 0;
  }

  /** Translated address of `addr` inside entry `i`. */
  translate(i: number, addr: number): number {
    return this.pa[i]! + (addr - this.ua[i]!);
  }

  /** Cache a (validated) translation fetched for `pasid`/`priv`; R=W=0 translations are never cached. */
  insert(pasid: number, priv: boolean, t: AtsTranslation): void {
    if (!t.read && !t.write && !t.untranslatedOnly) return;
    const lo = t.untranslatedAddr;
    const hi = lo + t.size;
    const k = sizeClass(lo, t.size);
    // Entries of the same tag overlapping [lo, hi): either one holding lo (of this size or
    // larger) or, when smaller sizes are cached (or irregular entries), any: then scan.
    if (k < 0 || this.irregular > 0 || (this.classes.length > 0 && this.classes[0]! < k)) {
      for (let j = 0; j < this.capacity; j++) {
        const f = this.flags[j]!;
        if ((f & F_VALID) === 0) continue;
        if (this.tag[j] === pasid && ((f & F_PRIV) !== 0) === priv && this.ua[j]! < hi && lo < this.ua[j]! + this.size[j]!) this.drop(j);
      }
    } else {
      const classes = this.classes;
      for (let c = classes.length - 1; c >= 0 && classes[c]! >= k; c--) {
        const s = POW2[classes[c]!]!;
        const base = lo - (lo % s);
        for (let j = this.bucketHead[this.bucket(base / PAGE)]!; j >= 0;) {
          const next = this.chainNext[j]!;
          if (this.tag[j] === pasid && ((this.flags[j]! & F_PRIV) !== 0) === priv && this.ua[j]! < hi && lo < this.ua[j]! + this.size[j]!) this.drop(j);
          j = next;
        }
      }
    }
    let slot = this.lowestFree();
    if (slot < 0) {
      slot = this.lruTail;
      this.drop(slot);
      this.evictions.value++;
    }
    this.ua[slot] = lo;
    this.size[slot] = t.size;
    this.pa[slot] = t.translatedAddr;
    this.tag[slot] = pasid;
    this.flags[slot] =
      F_VALID |
      (t.read ? F_R : 0) |
      (t.write ? F_W : 0) |
      (t.exec ? F_X : 0) |
      (t.untranslatedOnly ? F_U : 0) |
      (t.global ? F_G : 0) |
      (priv ? F_PRIV : 0);
    this.freeBits[slot >>> 5]! &= ~(1 << (slot & 31));
    this.linkFront(slot);
    if (k < 0) this.irregular++;
    else this.index(slot, lo, k);
    // A new entry may be the lowest slot covering pages the memo answered for.
    this.memoPage.fill(-1);
    this.fills.value++;
    if (this.tracer.wants('dma-engine.atc.fill')) {
      this.tracer.trace('dma-engine.atc.fill', this.source, {
        dev: this.source,
        pasid,
        addr: lo,
        size: t.size,
        pa: t.translatedAddr,
        perms: `${t.read ? 'R' : '-'}${t.write ? 'W' : '-'}${t.exec ? 'X' : '-'}${t.untranslatedOnly ? 'U' : ''}${t.global ? 'G' : ''}${priv ? 'P' : ''}`,
      });
    }
  }

  /** Drop the entries an Invalidation Request names; returns how many. */
  invalidate(pasid: number, allPasids: boolean, addr: number, size: number): number {
    const hi = addr + size;
    let n = 0;
    for (let j = 0; j < this.capacity; j++) {
      const f = this.flags[j]!;
      if ((f & F_VALID) === 0) continue;
      if (!(this.ua[j]! < hi && addr < this.ua[j]! + this.size[j]!)) continue;
      if (pasid >= 0 && !allPasids && this.tag[j] !== pasid && (f & F_G) === 0) continue;
      this.drop(j);
      n++;
    }
    this.invalidated.value += n;
    return n;
  }

  /** Drop everything (ATS disabled, STU or PASID control changed, reset). */
  flush(): number {
    const n = this.count;
    this.clear();
    return n;
  }

  /** Valid entries now. */
  get count(): number {
    let n = 0;
    for (let j = 0; j < this.capacity; j++) if (this.flags[j]! & F_VALID) n++;
    return n;
  }

  /** A snapshot of the valid entries (tests, debugging). */
  entries(): AtcEntry[] {
    const out: AtcEntry[] = [];
    for (let j = 0; j < this.capacity; j++) {
      const f = this.flags[j]!;
      if ((f & F_VALID) === 0) continue;
      out.push({
        pasid: this.tag[j]!,
        priv: (f & F_PRIV) !== 0,
        global: (f & F_G) !== 0,
        untranslatedAddr: this.ua[j]!,
        size: this.size[j]!,
        translatedAddr: this.pa[j]!,
        read: (f & F_R) !== 0,
        write: (f & F_W) !== 0,
        exec: (f & F_X) !== 0,
        untranslatedOnly: (f & F_U) !== 0,
      });
    }
    return out;
  }

  // --- bookkeeping -----------------------------------------------------------

  private lowestFree(): number {
    const w = this.freeBits;
    for (let i = 0; i < w.length; i++) {
      const x = w[i]!;
      if (x !== 0) return (i << 5) + (31 - Math.clz32(x & -x));
    }
    return -1;
  }

  private linkFront(j: number): void {
    this.older[j] = this.lruHead;
    this.newer[j] = -1;
    if (this.lruHead >= 0) this.newer[this.lruHead] = j;
    else this.lruTail = j;
    this.lruHead = j;
  }

  private unlink(j: number): void {
    const n = this.newer[j]!;
    const o = this.older[j]!;
    if (n >= 0) this.older[n] = o;
    else this.lruHead = o;
    if (o >= 0) this.newer[o] = n;
    else this.lruTail = n;
  }

  /** Entry `j` was used now. */
  private touch(j: number): void {
    if (this.lruHead === j) return;
    this.unlink(j);
    this.linkFront(j);
  }

  private index(j: number, ua: number, k: number): void {
    const b = this.bucket(ua / PAGE);
    this.bucketOf[j] = b;
    this.chainNext[j] = this.bucketHead[b]!;
    this.bucketHead[b] = j;
    if (this.classCount[k]++ === 0) this.classes = this.classes.concat(k).sort((x, y) => x - y);
  }

  /** Free a valid slot. */
  private drop(j: number): void {
    this.flags[j] = 0;
    this.memoPage.fill(-1);
    this.freeBits[j >>> 5]! |= 1 << (j & 31);
    this.unlink(j);
    const b = this.bucketOf[j]!;
    if (b < 0) {
      this.irregular--;
      return;
    }
    this.bucketOf[j] = -1;
    if (this.bucketHead[b] === j) this.bucketHead[b] = this.chainNext[j]!;
    else {
      let p = this.bucketHead[b]!;
      while (this.chainNext[p] !== j) p = this.chainNext[p]!;
      this.chainNext[p] = this.chainNext[j]!;
    }
    const k = Math.log2(this.size[j]!);
    if (--this.classCount[k] === 0) this.classes = this.classes.filter((x) => x !== k);
  }
}

const PAGE = 4096;
/** Lines of the lookup memo (a power of two): a 64 KiB transfer's source and destination pages, its ring slot and record. */
const MEMO = 64;
/** 2^k for k < 64, exact. */
const POW2 = Array.from({ length: 64 }, (_, k) => 2 ** k);

/** log2 of an entry's size when it is a power of two of at least a page, `ua` aligned to it and both safe integers; else -1. */
function sizeClass(ua: number, size: number): number {
  if (!Number.isSafeInteger(size) || size < PAGE || !Number.isSafeInteger(ua) || ua < 0) return -1;
  const k = Math.round(Math.log2(size));
  if (POW2[k] !== size || ua % size !== 0 || ua + size > 2 ** 53) return -1;
  return k;
}
