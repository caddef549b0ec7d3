/**
 * The IO page table of an IOAS (the role of drivers/iommu/iommufd/
 * io_pagetable.c; the pinned pages themselves are in pages.ts): areas (IOVA
 * ranges backed by a slice of a pinned-pages object), reserved ranges (domain apertures, device reserved
 * regions), the allowed ranges that steer allocation, and every domain the
 * IOAS is mirrored into. Pages are pinned and charged once per pages object
 * while any area using them sits in an IOAS with at least one domain, so a
 * COPY shares the pin and the charge. Every operation either completes or
 * leaves everything as it found it.
 */
import { IOMMU_CACHE } from '../iommu-core/io-pgtable.ts';
import { EADDRINUSE } from '../uapi/errno.ts';
import { EEXIST, EINVAL, ENOENT, ENOMEM, ENOSPC, EOVERFLOW } from '../uapi/errno.ts';
import type { FaultInjector } from '../fault/injector.ts';
import { injectedErrno } from './points.ts';
import type { IommuDomain } from '../iommu-core/domain.ts';
import type { ResvRegion } from '../iommu-core/types.ts';
import { IntervalTree } from '../lib/interval-tree.ts';

import { Area, HPAGE, IOVA_MAX, PAGE, Pages } from './pages.ts';
import { U64_MAX } from '../uapi/struct.ts';

const IOVA_MAX_BIG = BigInt(IOVA_MAX);

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

  /** `faults`: the machine's injection points, for the iommufd steps that can fail. */
  constructor(readonly faults?: FaultInjector) {}

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

  /**
   * A FIXED_IOVA range as the ioctl gave it (u64s), in Linux's order:
   * iopt_alloc_area_pages() refuses a zero or unaligned length (-EINVAL),
   * then iopt_check_iova() an unaligned IOVA (-EINVAL), a range wrapping past
   * ULONG_MAX (-EOVERFLOW), one over a reserved range (-EINVAL) or over an
   * area (-EEXIST). Past the IOVA space this emulator holds (2^53) a range
   * is reserved when a reservation reaches the top (a domain's aperture,
   * reserved up to ULONG_MAX); mapPieces refuses one it cannot hold.
   */
  checkIova(iova: bigint, length: bigint): number {
    const align = BigInt(this.iovaAlignment);
    if (length === 0n || length % align !== 0n) return -EINVAL;
    if (iova % align !== 0n) return -EINVAL;
    const last = iova + length - 1n;
    if (last > U64_MAX) return -EOVERFLOW;
    // Clipped to the top of the space: a reservation reaching IOVA_MAX reaches ULONG_MAX, and no area is beyond.
    const first = iova > IOVA_MAX_BIG ? IOVA_MAX : Number(iova);
    const lastClipped = last > IOVA_MAX_BIG ? IOVA_MAX : Number(last);
    if (this.reservedOverlaps(first, lastClipped)) return -EINVAL;
    if (this.areas.firstOverlap(first, lastClipped) !== undefined) return -EEXIST;
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
  mapPieces(pieces: PagesPiece[], iova: bigint | undefined, prot: number): number {
    const length = pieces.reduce((s, p) => s + p.length, 0);
    // iopt_area_alloc() for every piece comes first.
    if (this.faults !== undefined) for (const _ of pieces) if (injectedErrno(this.faults, 'iommufd.area_alloc', ENOMEM) < 0) return -ENOMEM;
    let at: number;
    if (iova === undefined) {
      const first = pieces[0]!;
      at = this.allocIova(first.pages.uptr - (first.pages.uptr % PAGE) + first.startByte, length);
      if (at < 0) return at;
    } else {
      const r = this.checkIova(iova, BigInt(length));
      if (r < 0) return r;
      // Inside u64 and clear of every rule, but past the IOVA space this emulator holds.
      if (iova + BigInt(length) - 1n > IOVA_MAX_BIG) return -EOVERFLOW;
      at = Number(iova);
    }
    const areas: Area[] = [];
    let off = at;
    for (const p of pieces) {
      // iopt_insert_area(): the only rule is page_offset & (iova_alignment - 1) == 0; without a domain
      // (alignment 1) any IOVA takes any user address, and a domain refuses such areas when it comes.
      if ((p.startByte % PAGE) % this.iovaAlignment !== 0) return -EINVAL;
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
    const r = a.pages.pinRange(a.firstPage, a.npages);
    if (r < 0) return r;
    for (let i = 0; i < this.domains.length; i++) {
      const m = this.mapAreaInto(a, this.domains[i]!);
      if (m < 0) {
        for (let j = 0; j < i; j++) this.unmapAreaFrom(a, this.domains[j]!);
        a.pages.unpinRange(a.firstPage, a.npages);
        return m;
      }
    }
    return 0;
  }

  private unfillArea(a: Area): void {
    if (this.domains.length === 0) return;
    for (const d of this.domains) this.unmapAreaFrom(a, d);
    a.pages.unpinRange(a.firstPage, a.npages);
  }

  private areaIovaBase(a: Area): number {
    return a.iova - (a.startByte % PAGE);
  }

  private mapAreaInto(a: Area, d: IommuDomain): number {
    const base = this.areaIovaBase(a);
    const first = a.firstPage;
    const runs = a.pages.contiguousRuns(first, a.npages);
    let mapped = 0;
    for (const [idx, n] of runs) {
      const iova = base + (idx - first) * PAGE;
      const pa = a.pages.pa(idx);
      let r = this.faults === undefined ? 0 : injectedErrno(this.faults, 'iommufd.domain_map', ENOMEM, { iova });
      if (r === 0 && this.disableLargePages) {
        // batch_iommu_map_small(): one PAGE_SIZE iommu_map per page, so any page can be unmapped alone later.
        for (let k = 0; k < n && r >= 0; k++) {
          r = d.map(iova + k * PAGE, pa + k * PAGE, PAGE, a.prot | IOMMU_CACHE);
          if (r < 0 && k > 0) d.unmap(iova, k * PAGE);
        }
      } else if (r === 0) r = d.map(iova, pa, n * PAGE, a.prot | IOMMU_CACHE);
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
   * iopt_unmap_iova_range(): the areas in [iova, last] go in ascending
   * order; an area only partly inside stops the walk with -ENOENT (those
   * before it are already gone, as in the kernel). A range with no area
   * unmaps nothing and succeeds (0 bytes; since Linux 6.18 the callers
   * decide: IOMMU_IOAS_UNMAP says -ENOENT, the VFIO compat unmap says 0).
   * Returns bytes unmapped, or -ENOENT.
   */
  unmapRange(iova: number, last: number): number {
    let bytes = 0;
    for (const n of this.areas.overlapping(iova, last)) {
      if (n.start < iova || n.last > last) return -ENOENT;
      bytes += this.removeArea(n.value);
    }
    return bytes;
  }

  /**
   * iopt_cut_iova(): split the areas holding each of `iovas` so that the
   * IOVA ends an area (VFIO TYPE1 compat unmaps inside a mapping this way).
   * 0 or -errno (-EINVAL for a cut the IOVA alignment does not allow).
   */
  cut(iovas: number[]): number {
    for (const at of iovas) {
      const n = this.areas.firstOverlap(at, at);
      if (n === undefined) continue;
      const r = this.splitArea(n.value, at);
      if (r < 0) return r;
    }
    return 0;
  }

  /** iopt_area_split(): [start, at] and [at+1, last], sharing the pages; their pins carry over unchanged. */
  private splitArea(a: Area, at: number): number {
    if (at === a.iova || at === a.last) return 0;
    const next = at + 1;
    const align = this.iovaAlignment;
    const rhsStart = a.startByte + (next - a.iova);
    if (next % align !== 0 || rhsStart % align !== 0) return -EINVAL;
    // Splitting an area a domain may hold in huge IOPTEs would split a leaf: refused.
    if (this.domains.length > 0 && !this.disableLargePages) return -EINVAL;
    if (this.faults !== undefined && injectedErrno(this.faults, 'iommufd.area_alloc', ENOMEM, { iova: at }) < 0) return -ENOMEM;
    const lhs = new Area(a.iova, next - a.iova, a.pages, a.startByte, a.prot);
    const rhs = new Area(next, a.last - at, a.pages, rhsStart, a.prot);
    // The halves cover the same pages: take their pin references before dropping the whole's.
    if (this.domains.length > 0) {
      a.pages.pinRange(lhs.firstPage, lhs.npages);
      a.pages.pinRange(rhs.firstPage, rhs.npages);
      a.pages.unpinRange(a.firstPage, a.npages);
    }
    this.areas.remove(a.node!);
    a.node = undefined;
    lhs.node = this.areas.insert(lhs.iova, lhs.last, lhs);
    rhs.node = this.areas.insert(rhs.iova, rhs.last, rhs);
    a.pages.areaRefs++;
    return 0;
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
    if (--a.pages.areaRefs === 0) a.pages.released();
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

  /**
   * iopt_enable_large_pages() always succeeds (existing mappings keep their
   * page sizes); iopt_disable_large_pages() is refused (-EINVAL) once
   * domains already hold mappings.
   */
  setLargePages(enable: boolean): number {
    if (enable) {
      this.disableLargePages = false;
      return this.calculateIovaAlignment();
    }
    if (this.disableLargePages) return 0;
    if (this.areas.size > 0 && this.domains.length > 0) return -EINVAL;
    this.disableLargePages = true;
    const r = this.calculateIovaAlignment();
    if (r < 0) this.disableLargePages = false;
    return r;
  }

  /**
   * iopt_calculate_iova_alignment(): PAGE_SIZE while large pages are
   * disabled (batch_iommu_map_small() maps page by page), else 1, raised to
   * every domain's smallest page; raising it is refused with -EADDRINUSE
   * if an area's IOVA, length or page offset does not suit the new value.
   */
  private calculateIovaAlignment(): number {
    const align = this.domains.reduce((m, x) => Math.max(m, x.minPageSize || 1), this.disableLargePages ? PAGE : 1);
    if (align > this.iovaAlignment) {
      for (const n of this.areas.all()) {
        const a = n.value;
        if (a.iova % align !== 0 || a.length % align !== 0 || (a.startByte % PAGE) % align !== 0) return -EADDRINUSE;
      }
    }
    this.iovaAlignment = align;
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
    // iopt_check_iova_alignment(): every area's IOVA, length and page_offset must suit the new alignment.
    for (const n of this.areas.all()) {
      const a = n.value;
      if (a.iova % align !== 0 || a.length % align !== 0 || (a.startByte % PAGE) % align !== 0) return -EADDRINUSE;
    }
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
        const p = a.pages.pinRange(a.firstPage, a.npages);
        if (p < 0) {
          r = p;
          break;
        }
      }
      const m = this.mapAreaInto(a, d);
      if (m < 0) {
        if (first) a.pages.unpinRange(a.firstPage, a.npages);
        r = m;
        break;
      }
      done.push({ a, pinned: first });
    }
    if (r < 0) {
      for (const { a, pinned } of done) {
        this.unmapAreaFrom(a, d);
        if (pinned) a.pages.unpinRange(a.firstPage, a.npages);
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
      if (last) n.value.pages.unpinRange(n.value.firstPage, n.value.npages);
    }
    this.domains.splice(i, 1);
    this.unreserve(d);
    this.calculateIovaAlignment();
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
