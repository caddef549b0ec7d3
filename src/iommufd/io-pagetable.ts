/**
 * The IO page table of an IOAS (the role of drivers/iommu/iommufd/
 * io_pagetable.c and pages.c): areas (IOVA ranges backed by a slice of a
 * pinned-pages object), reserved ranges (domain apertures, device reserved
 * regions), the allowed ranges that steer allocation, and every domain the
 * IOAS is mirrored into. Pages are pinned and charged once per pages object
 * while any area using them sits in an IOAS with at least one domain, so a
 * COPY shares the pin and the charge. Every operation either completes or
 * leaves everything as it found it.
 */
import { IOMMU_CACHE } from '../../iommu/pgtable/types.ts';
import { EADDRINUSE } from '../host/errno.ts';
import { EEXIST, EFAULT, EINVAL, ENOENT, ENOMEM, ENOSPC, EOVERFLOW } from '../host/errno.ts';
import { accountLockedVm, contiguousRuns, pinUserPages, unpinUserPages, type PinnedPages } from '../host/pin.ts';
import type { Process } from '../host/process.ts';
import type { IommuDomain } from '../iommu-core/domain.ts';
import type { ResvRegion } from '../iommu-core/types.ts';
import { IntervalTree, type IntervalNode } from './interval-tree.ts';

export const PAGE = 4096;
/** HPAGE_SIZE (PMD size with 4K pages): the largest IOVA alignment the allocator chooses. */
export const HPAGE = 2 ** 21;
/**
 * The highest IOVA this emulator represents (IOVAs are JS numbers inside):
 * the kernel's ULONG_MAX stands here for 2^53 - 1.
 */
export const IOVA_MAX = Number.MAX_SAFE_INTEGER;

export type AccountMode = 'none' | 'user' | 'mm';

/** A user VA range to be pinned (struct iopt_pages): shared by every area that maps part of it. */
export class Pages implements PinnedPages {
  /** Page-aligned first VA. */
  readonly va: number;
  readonly count: number;
  pas: Float64Array = new Float64Array(0);
  heads: Float64Array = new Float64Array(0);
  /** Areas in IOASes with domains that need the pages pinned. */
  pinRefs = 0;
  /** Areas referencing the object at all. */
  areaRefs = 0;

  constructor(
    readonly proc: Process,
    /** The user address as given (iopt_pages.uptr). */
    readonly uptr: number,
    readonly length: number,
    readonly writable: boolean,
    readonly accountMode: AccountMode,
  ) {
    this.va = uptr - (uptr % PAGE);
    this.count = Math.ceil((uptr + length - this.va) / PAGE);
  }

  get pinned(): boolean {
    return this.pinRefs > 0;
  }

  /** Take a pin reference: the first one charges and pins every page. */
  pin(): number {
    if (this.pinRefs > 0) {
      this.pinRefs++;
      return 0;
    }
    const mm = this.proc.mm;
    if (this.accountMode === 'user') {
      const r = accountLockedVm(this.proc, this.count, true);
      if (r < 0) return r;
    } else if (this.accountMode === 'mm') {
      // IOPT_PAGES_ACCOUNT_MM: account_locked_vm() on the mm.
      const r = accountLockedVm(this.proc, this.count, true);
      if (r < 0) return r;
    }
    const p = pinUserPages(mm, this.va, this.count, this.writable);
    if (typeof p === 'number') {
      if (this.accountMode !== 'none') accountLockedVm(this.proc, this.count, false);
      return p === -ENOMEM ? -ENOMEM : -EFAULT;
    }
    this.pas = p.pas;
    this.heads = p.heads;
    this.pinRefs = 1;
    return 0;
  }

  unpin(): void {
    if (this.pinRefs === 0) return;
    if (--this.pinRefs > 0) return;
    unpinUserPages(this.proc.mm, this);
    if (this.accountMode !== 'none') accountLockedVm(this.proc, this.count, false);
    this.pas = new Float64Array(0);
    this.heads = new Float64Array(0);
  }
}

/** A mapped IOVA range (struct iopt_area). */
export class Area {
  node: IntervalNode<Area> | undefined;
  constructor(
    readonly iova: number,
    readonly length: number,
    readonly pages: Pages,
    /** Byte offset of the area's first byte from pages.va. */
    readonly startByte: number,
    readonly prot: number,
  ) {}

  get last(): number {
    return this.iova + this.length - 1;
  }
  get firstPage(): number {
    return Math.floor(this.startByte / PAGE);
  }
  get npages(): number {
    return Math.ceil((this.startByte + this.length) / PAGE) - this.firstPage;
  }
}

interface Reserved {
  start: number;
  last: number;
  owner: object;
}

export interface Span {
  start: number;
  last: number;
}

/** One piece of an existing mapping handed to a new one (iopt_pages_list). */
export interface PagesPiece {
  pages: Pages;
  startByte: number;
  length: number;
}

export class IoPagetable {
  readonly areas = new IntervalTree<Area>();
  readonly reserved: Reserved[] = [];
  allowed: Span[] = [];
  readonly domains: IommuDomain[] = [];
  iovaAlignment = 1;
  disableLargePages = false;

  // --- queries -----------------------------------------------------------------------

  reservedOverlaps(start: number, last: number): boolean {
    return this.reserved.some((r) => r.start <= last && r.last >= start);
  }

  /** Reserved ranges merged into disjoint spans, ascending. */
  reservedSpans(): Span[] {
    const sorted = [...this.reserved].sort((a, b) => a.start - b.start);
    const out: Span[] = [];
    for (const r of sorted) {
      const top = out[out.length - 1];
      if (top !== undefined && r.start <= top.last + 1) top.last = Math.max(top.last, r.last);
      else out.push({ start: r.start, last: r.last });
    }
    return out;
  }

  // --- IOVA choice ---------------------------------------------------------------------

  /** iopt_check_iova(): a FIXED_IOVA range must be aligned, in range, clear of reserved ranges and areas. */
  checkIova(iova: number, length: number): number {
    if (length === 0) return -EINVAL;
    if (iova + length - 1 > IOVA_MAX) return -EOVERFLOW;
    if (iova % this.iovaAlignment !== 0 || length % this.iovaAlignment !== 0) return -EINVAL;
    if (this.reservedOverlaps(iova, iova + length - 1)) return -EINVAL;
    if (this.areas.firstOverlap(iova, iova + length - 1) !== undefined) return -EEXIST;
    return 0;
  }

  /**
   * iopt_alloc_iova(): the lowest free IOVA inside the allowed ranges (or
   * [PAGE_SIZE, ULONG_MAX - PAGE_SIZE] when none are set), aligned to the
   * smaller of the length rounded up to a power of two and the user address's
   * own alignment (capped at HPAGE_SIZE), keeping the address's offset in its page.
   */
  allocIova(uptr: number, length: number): number {
    if (length === 0 || length >= IOVA_MAX / 2) return -EOVERFLOW;
    let align = roundupPow2(length);
    if (uptr !== 0) align = Math.min(align, lowBit(uptr));
    if (align >= HPAGE) align = HPAGE;
    if (align < this.iovaAlignment) return -EINVAL;
    if (length % this.iovaAlignment !== 0) return -EINVAL;
    const pageOffset = uptr % PAGE;
    const spans = this.allowed.length > 0 ? this.allowed : [{ start: PAGE, last: IOVA_MAX - PAGE }];
    const resv = this.reservedSpans();
    const fit = (a: number, b: number): number => {
      const base = Math.ceil(a / align) * align;
      const low = base % PAGE;
      const x = base - low + (low | pageOffset);
      return x >= a && x + length - 1 <= b ? x : -1;
    };
    for (const s0 of spans) {
      const lo = Math.max(s0.start, PAGE);
      const hi = Math.min(s0.last, IOVA_MAX - PAGE);
      if (lo > hi) continue;
      // The allowed span minus the reserved spans: the windows the areas' holes are searched in.
      let cur = lo;
      const windows: Span[] = [];
      for (const r of resv) {
        if (r.last < cur) continue;
        if (r.start > hi) break;
        if (r.start > cur) windows.push({ start: cur, last: r.start - 1 });
        cur = r.last + 1;
        if (cur > hi) break;
      }
      if (cur <= hi) windows.push({ start: cur, last: hi });
      for (const w of windows) {
        if (w.last - w.start + 1 < length) continue;
        const x = this.areas.firstFit(w.start, w.last, length, fit);
        if (x >= 0) return x;
      }
    }
    return -ENOSPC;
  }

  // --- map / unmap -----------------------------------------------------------------------

  /**
   * iopt_map_pages(): place `pieces` (consecutive in IOVA) at `iova` (or an
   * allocated IOVA when iova is undefined), pin them if this IOAS has domains
   * and map them into every domain. Returns the IOVA or -errno.
   */
  mapPieces(pieces: PagesPiece[], iova: number | undefined, prot: number): number {
    const length = pieces.reduce((s, p) => s + p.length, 0);
    let at: number;
    if (iova === undefined) {
      const first = pieces[0]!;
      at = this.allocIova(first.pages.uptr - (first.pages.uptr % PAGE) + first.startByte, length);
      if (at < 0) return at;
    } else {
      const r = this.checkIova(iova, length);
      if (r < 0) return r;
      at = iova;
    }
    const areas: Area[] = [];
    let off = at;
    for (const p of pieces) {
      if (off % PAGE !== p.startByte % PAGE) return -EINVAL;
      areas.push(new Area(off, p.length, p.pages, p.startByte, prot));
      off += p.length;
    }
    const done: Area[] = [];
    for (const a of areas) {
      const r = this.fillArea(a);
      if (r < 0) {
        for (const d of done) this.unfillArea(d);
        return r;
      }
      done.push(a);
    }
    for (const a of areas) {
      a.node = this.areas.insert(a.iova, a.last, a);
      a.pages.areaRefs++;
    }
    return at;
  }

  /** Pin (when there are domains) and map one area into every domain; all or nothing. */
  private fillArea(a: Area): number {
    if (this.domains.length === 0) return 0;
    const r = a.pages.pin();
    if (r < 0) return r;
    for (let i = 0; i < this.domains.length; i++) {
      const m = this.mapAreaInto(a, this.domains[i]!);
      if (m < 0) {
        for (let j = 0; j < i; j++) this.unmapAreaFrom(a, this.domains[j]!);
        a.pages.unpin();
        return m;
      }
    }
    return 0;
  }

  private unfillArea(a: Area): void {
    if (this.domains.length === 0) return;
    for (const d of this.domains) this.unmapAreaFrom(a, d);
    a.pages.unpin();
  }

  private areaIovaBase(a: Area): number {
    return a.iova - (a.startByte % PAGE);
  }

  private mapAreaInto(a: Area, d: IommuDomain): number {
    const base = this.areaIovaBase(a);
    const first = a.firstPage;
    const runs = contiguousRuns(a.pages, first, a.npages);
    let mapped = 0;
    for (const [idx, n] of runs) {
      const iova = base + (idx - first) * PAGE;
      const pa = a.pages.pas[idx]!;
      let r = 0;
      if (this.disableLargePages) {
        for (let k = 0; k < n && r >= 0; k++) {
          r = d.map(iova + k * PAGE, pa + k * PAGE, PAGE, a.prot | IOMMU_CACHE);
          if (r < 0 && k > 0) d.unmap(iova, k * PAGE);
        }
      } else r = d.map(iova, pa, n * PAGE, a.prot | IOMMU_CACHE);
      if (r < 0) {
        if (mapped > 0) d.unmap(base, mapped);
        return r;
      }
      mapped += n * PAGE;
    }
    return 0;
  }

  private unmapAreaFrom(a: Area, d: IommuDomain): void {
    d.unmap(this.areaIovaBase(a), a.npages * PAGE);
  }

  /**
   * iopt_unmap_iova(): every area inside [iova, last] goes; an area only
   * partly inside refuses the whole call (-ENOENT, nothing changed), as does
   * a range with no area. Returns bytes unmapped.
   */
  unmapRange(iova: number, last: number): number {
    const hit = this.areas.overlapping(iova, last);
    if (hit.length === 0) return -ENOENT;
    for (const n of hit) if (n.start < iova || n.last > last) return -ENOENT;
    let bytes = 0;
    for (const n of hit) bytes += this.removeArea(n.value);
    return bytes;
  }

  unmapAll(): number {
    let bytes = 0;
    for (const n of this.areas.all()) bytes += this.removeArea(n.value);
    return bytes;
  }

  private removeArea(a: Area): number {
    this.unfillArea(a);
    this.areas.remove(a.node!);
    a.node = undefined;
    a.pages.areaRefs--;
    return a.length;
  }

  /** iopt_get_pages(): the pieces covering [iova, iova+length) exactly, or -ENOENT where a hole is. */
  getPieces(iova: number, length: number): PagesPiece[] | number {
    if (length === 0) return -EINVAL;
    const last = iova + length - 1;
    if (last > IOVA_MAX) return -EOVERFLOW;
    const hit = this.areas.overlapping(iova, last);
    let expect = iova;
    const out: PagesPiece[] = [];
    for (const n of hit) {
      const a = n.value;
      if (a.iova > expect) return -ENOENT;
      const s = Math.max(a.iova, iova);
      const e = Math.min(a.last, last);
      out.push({ pages: a.pages, startByte: a.startByte + (s - a.iova), length: e - s + 1 });
      expect = e + 1;
    }
    if (out.length === 0 || expect !== last + 1) return -ENOENT;
    return out;
  }

  // --- reserved and allowed ranges --------------------------------------------------------

  /** iopt_reserve_iova(): refused while an area or an allowed range is there. */
  reserve(start: number, last: number, owner: object): number {
    if (start > last) return 0;
    if (this.areas.firstOverlap(start, last) !== undefined) return -EADDRINUSE;
    if (this.allowed.some((a) => a.start <= last && a.last >= start)) return -EADDRINUSE;
    this.reserved.push({ start, last, owner });
    return 0;
  }

  unreserve(owner: object): void {
    for (let i = this.reserved.length - 1; i >= 0; i--) if (this.reserved[i]!.owner === owner) this.reserved.splice(i, 1);
  }

  /** iopt_table_enforce_dev_resv_regions(): every region but the relaxable direct ones, all or nothing. */
  enforceResvRegions(regions: ResvRegion[], owner: object): number {
    for (const r of regions) {
      if (r.type === 'direct-relaxable') continue;
      const e = this.reserve(r.start, Math.min(IOVA_MAX, r.start + r.length - 1), owner);
      if (e < 0) {
        this.unreserve(owner);
        return e;
      }
    }
    return 0;
  }

  /** iopt_set_allow_iova(): replace the allowed list; refused if a reserved range intersects it. */
  setAllowed(spans: Span[]): number {
    for (const s of spans) if (this.reservedOverlaps(s.start, s.last)) return -EADDRINUSE;
    this.allowed = [...spans].sort((a, b) => a.start - b.start);
    return 0;
  }

  // --- domains ----------------------------------------------------------------------------

  /**
   * iopt_table_add_domain(): reserve what lies outside the aperture, pin on
   * the first domain, and map every area into the new one; all or nothing.
   */
  addDomain(d: IommuDomain): number {
    const align = Math.max(this.iovaAlignment, d.minPageSize || 1);
    if (align > PAGE) return -EINVAL;
    for (const n of this.areas.all()) if (n.value.iova % align !== 0 || n.value.length % align !== 0) return -EADDRINUSE;
    const g = d.driver.geometry;
    let r = 0;
    if (g.apertureStart > 0) r = this.reserve(0, g.apertureStart - 1, d);
    if (r === 0 && g.apertureEnd < IOVA_MAX) r = this.reserve(g.apertureEnd + 1, IOVA_MAX, d);
    if (r < 0) {
      this.unreserve(d);
      return r;
    }
    const first = this.domains.length === 0;
    const done: { a: Area; pinned: boolean }[] = [];
    for (const n of this.areas.all()) {
      const a = n.value;
      if (first) {
        const p = a.pages.pin();
        if (p < 0) {
          r = p;
          break;
        }
      }
      const m = this.mapAreaInto(a, d);
      if (m < 0) {
        if (first) a.pages.unpin();
        r = m;
        break;
      }
      done.push({ a, pinned: first });
    }
    if (r < 0) {
      for (const { a, pinned } of done) {
        this.unmapAreaFrom(a, d);
        if (pinned) a.pages.unpin();
      }
      this.unreserve(d);
      return r;
    }
    this.domains.push(d);
    this.iovaAlignment = align;
    return 0;
  }

  /** iopt_table_remove_domain(): unmap everything from it; the last domain unpins. */
  removeDomain(d: IommuDomain): void {
    const i = this.domains.indexOf(d);
    if (i < 0) return;
    const last = this.domains.length === 1;
    for (const n of this.areas.all()) {
      this.unmapAreaFrom(n.value, d);
      if (last) n.value.pages.unpin();
    }
    this.domains.splice(i, 1);
    this.unreserve(d);
    this.iovaAlignment = this.domains.reduce((m, x) => Math.max(m, x.minPageSize || 1), 1);
  }
}

function roundupPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function lowBit(n: number): number {
  let b = 1;
  while (n % (b * 2) === 0 && b < 2 ** 52) b *= 2;
  return b;
}
