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
 * lookup or a fill), looked up by a linear scan after a check of the most
 * recently hit entry; replacement is LRU (a use counter per entry). A fill
 * first drops entries of the same tag that overlap it, so lookups never see
 * two answers. Invalidation (PCIe 10.3.8, and Linux's reading of it in
 * arm_smmu_atc_inv_to_cmd): a request without PASID drops every entry in the
 * range whatever its PASID; one with Global Invalidate (when supported) too;
 * one with a PASID drops that PASID's entries and the Global entries in the
 * range (dropping more than asked is always allowed).
 */
export class Atc {
  readonly capacity: number;
  private readonly ua: Float64Array;
  private readonly size: Float64Array;
  private readonly pa: Float64Array;
  private readonly used: Float64Array;
  private readonly tag: Int32Array;
  private readonly flags: Uint8Array;
  private tick = 0;
  private mru = -1;
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
    this.used = new Float64Array(capacity);
    this.tag = new Int32Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.hits = counters.counter(`${prefix}.atc.hit`);
    this.misses = counters.counter(`${prefix}.atc.miss`);
    this.fills = counters.counter(`${prefix}.atc.fill`);
    this.evictions = counters.counter(`${prefix}.atc.evict`);
    this.invalidated = counters.counter(`${prefix}.atc.invalidated`);
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

  /**
   * The entry translating `addr` for this access, or -1 (a miss, counted;
   * an entry without the needed permission is a miss too: the device asks
   * again, as a write to a read-only translation must).
   */
  lookup(pasid: number, priv: boolean, addr: number, write: boolean, exec: boolean): number {
    let i = this.mru;
    if (i < 0 || !this.covers(i, pasid, priv, addr)) {
      i = -1;
      for (let j = 0; j < this.capacity; j++) {
        if (this.covers(j, pasid, priv, addr)) {
          i = j;
          break;
        }
      }
    }
    if (i < 0 || !this.permits(i, write, exec)) {
      this.misses.value++;
      if (this.tracer.wants('dma-engine.atc.miss')) this.tracer.trace('dma-engine.atc.miss', this.source, { dev: this.source, pasid, addr, write });
      return -1;
    }
    this.mru = i;
    this.used[i] = ++this.tick;
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
    let slot = -1;
    for (let j = 0; j < this.capacity; j++) {
      const f = this.flags[j]!;
      if ((f & F_VALID) === 0) {
        if (slot < 0) slot = j;
        continue;
      }
      if (this.tag[j] === pasid && ((f & F_PRIV) !== 0) === priv && this.ua[j]! < hi && lo < this.ua[j]! + this.size[j]!) {
        this.flags[j] = 0;
        if (slot < 0) slot = j;
      }
    }
    if (slot < 0) {
      slot = 0;
      for (let j = 1; j < this.capacity; j++) if (this.used[j]! < this.used[slot]!) slot = j;
      this.evictions.value++;
    }
    this.ua[slot] = lo;
    this.size[slot] = t.size;
    this.pa[slot] = t.translatedAddr;
    this.tag[slot] = pasid;
    this.used[slot] = ++this.tick;
    this.flags[slot] =
      F_VALID |
      (t.read ? F_R : 0) |
      (t.write ? F_W : 0) |
      (t.exec ? F_X : 0) |
      (t.untranslatedOnly ? F_U : 0) |
      (t.global ? F_G : 0) |
      (priv ? F_PRIV : 0);
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
      this.flags[j] = 0;
      n++;
    }
    this.invalidated.value += n;
    return n;
  }

  /** Drop everything (ATS disabled, STU or PASID control changed, reset). */
  flush(): number {
    let n = 0;
    for (let j = 0; j < this.capacity; j++) {
      if (this.flags[j]! & F_VALID) n++;
      this.flags[j] = 0;
    }
    this.mru = -1;
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
}
