/**
 * The host-side skeleton every format's builder shares (Linux io-pgtable
 * semantics): a radix tree of tables in guest memory, leaves as large as
 * alignment and the page-size bitmap allow, unmap removing whole leaves,
 * empty tables freed, all-or-nothing map. A format plugs in its geometry
 * (RadixLevel[]) and descriptor encoding (EntryCodec).
 *
 * The builder keeps one piece of software state beside the tables: a count
 * of valid entries per table page (as Linux x86 keeps page refcounts), so
 * emptiness is known without rescanning a table.
 */
import type { PhysMem } from '../../src/memory/phys-mem.ts';
import type { U64Halves } from '../../src/hw/layout.ts';
import { IOMMU_READ, IOMMU_WRITE, IotlbGather, pgsizesOf, type BuilderStats, type PageTableBuilder, type TablePageAllocator } from '../../src/iommu-core/io-pgtable.ts';
import { EEXIST, EINVAL, ENOMEM, ERANGE } from '../../src/uapi/errno.ts';
import { POW2, remPow2, tableIndex } from './walk-common.ts';

export interface RadixLevel {
  /** The format's own level number, handed to the codec. */
  readonly native: number;
  /** log2 of the bytes one entry at this level spans. */
  readonly shift: number;
  readonly entries: number;
  readonly tableBytes: number;
  /** A leaf may be installed here (and its size is in the page-size bitmap). */
  readonly leafOk: boolean;
}

export const ENTRY_INVALID = 0;
export const ENTRY_TABLE = 1;
export const ENTRY_LEAF = 2;
export type EntryKind = 0 | 1 | 2;

export interface EntryCodec {
  kind(lo: number, hi: number, native: number): EntryKind;
  /** Next-table or output address of a valid entry. */
  addr(lo: number, hi: number, native: number): number;
  /** Fill the zeroed `d` with a table descriptor pointing at `pa`. */
  table(d: U64Halves, pa: number, native: number): void;
  /** Fill the zeroed `d` with a leaf mapping `pa` with IOMMU_* `prot`. */
  leaf(d: U64Halves, pa: number, prot: number, native: number): void;
}

const MAX_DEPTH = 6;

export class RadixBuilder implements PageTableBuilder {
  root = -1;
  readonly pgsizeBitmap: number;
  readonly pgsizes: readonly number[];
  readonly stats: BuilderStats = { leafWrites: 0, leafClears: 0, leaves: 0, tablePages: 0, tableBytes: 0 };
  private readonly useCount = new Map<number, number>();
  private readonly scratch: U64Halves = { lo: 0, hi: 0 };
  private readonly pathTable = new Array<number>(MAX_DEPTH).fill(0);
  private readonly pathIdx = new Array<number>(MAX_DEPTH).fill(0);
  private readonly minPage: number;

  constructor(
    readonly format: string,
    private readonly mem: PhysMem,
    private readonly alloc: TablePageAllocator,
    private readonly levels: readonly RadixLevel[],
    private readonly codec: EntryCodec,
    /** Input (IOVA) bits the tables resolve. */
    readonly iaBits: number,
    /** Output address bits a leaf may point to. */
    readonly oaBits: number,
  ) {
    if (levels.length === 0 || levels.length > MAX_DEPTH || !levels[levels.length - 1]!.leafOk) {
      throw new RangeError(`${format}: bad level geometry`);
    }
    let bitmap = 0;
    for (const l of levels) if (l.leafOk) bitmap += POW2[l.shift]!;
    this.pgsizeBitmap = bitmap;
    this.pgsizes = Object.freeze(pgsizesOf(bitmap));
    this.minPage = this.pgsizes[0]!;
  }

  /** Allocate the root table; 0 or ENOMEM. Factories call this once. */
  init(): number {
    const pa = this.allocTable(0);
    if (pa === undefined) return -ENOMEM;
    this.root = pa;
    return 0;
  }

  map(iova: number, pa: number, size: number, prot: number): number {
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0 || this.root < 0) return -EINVAL;
    if (!isAligned(iova, this.minPage) || !isAligned(pa, this.minPage) || !isAligned(size, this.minPage) || size === 0) {
      return -EINVAL;
    }
    if (iova + size > POW2[this.iaBits]! || pa + size > POW2[this.oaBits]!) return -ERANGE;
    let done = 0;
    while (done < size) {
      const depth = this.pickDepth(iova + done, pa + done, size - done);
      const rc = this.installLeaf(iova + done, pa + done, prot, depth);
      if (rc < 0) {
        // All or nothing: take back what this call mapped, then drop tables it left empty.
        if (done > 0) this.unmap(iova, done);
        this.prunePath(iova + done);
        return rc;
      }
      done += POW2[this.levels[depth]!.shift]!;
    }
    return 0;
  }

  unmap(iova: number, size: number, gather?: IotlbGather): number {
    if (this.root < 0 || !isAligned(iova, this.minPage) || !isAligned(size, this.minPage) || size === 0) return 0;
    if (iova + size > POW2[this.iaBits]!) return 0;
    const end = iova + size;
    let cursor = iova;
    while (cursor < end) {
      const next = this.removeLeafAt(cursor, gather);
      if (next < 0) break; // a hole ends the unmap, as Linux's __iommu_unmap stops
      cursor = next;
    }
    return cursor - iova;
  }

  iovaToPhys(iova: number): number {
    if (this.root < 0 || !Number.isInteger(iova) || iova < 0 || iova >= POW2[this.iaBits]!) return -1;
    let table = this.root;
    for (let d = 0; d < this.levels.length; d++) {
      const l = this.levels[d]!;
      const at = table + tableIndex(iova, l.shift, l.entries) * 8;
      const lo = this.mem.read32(at);
      const hi = this.mem.read32(at + 4);
      const kind = this.codec.kind(lo, hi, l.native);
      if (kind === ENTRY_INVALID) return -1;
      const addr = this.codec.addr(lo, hi, l.native);
      if (kind === ENTRY_LEAF) return addr + (iova % POW2[l.shift]!);
      table = addr;
    }
    return -1;
  }

  releaseGathered(gather: IotlbGather): void {
    const f = gather.freed;
    for (let i = 0; i + 1 < f.length; i += 2) this.alloc.free(f[i]!, f[i + 1]!);
    f.length = 0;
  }

  destroy(): void {
    if (this.root < 0) return;
    this.freeSubtree(this.root, 0);
    this.root = -1;
    this.stats.leaves = 0;
  }

  /* ---- internals ---- */

  /** Shallowest level whose leaf fits alignment and the remaining size. */
  private pickDepth(iova: number, pa: number, remaining: number): number {
    for (let d = 0; d < this.levels.length; d++) {
      const l = this.levels[d]!;
      if (!l.leafOk) continue;
      const span = POW2[l.shift]!;
      if (span <= remaining && remPow2(iova, span) === 0 && remPow2(pa, span) === 0) return d;
    }
    return this.levels.length - 1;
  }

  private installLeaf(iova: number, pa: number, prot: number, target: number): number {
    let table = this.root;
    for (let d = 0; d < target; d++) {
      const l = this.levels[d]!;
      const at = table + tableIndex(iova, l.shift, l.entries) * 8;
      const lo = this.mem.read32(at);
      const hi = this.mem.read32(at + 4);
      const kind = this.codec.kind(lo, hi, l.native);
      if (kind === ENTRY_LEAF) return -EEXIST;
      if (kind === ENTRY_TABLE) {
        table = this.codec.addr(lo, hi, l.native);
        continue;
      }
      const child = this.allocTable(d + 1);
      if (child === undefined) return -ENOMEM;
      this.writeEntry(at, (d2) => this.codec.table(d2, child, l.native));
      this.bump(table, 1);
      table = child;
    }
    const l = this.levels[target]!;
    const at = table + tableIndex(iova, l.shift, l.entries) * 8;
    if (this.codec.kind(this.mem.read32(at), this.mem.read32(at + 4), l.native) !== ENTRY_INVALID) return -EEXIST;
    // The leaf built in the scratch pair here, not through a closure: one leaf per mapped page (per PRI fault).
    const d = this.scratch;
    d.lo = 0;
    d.hi = 0;
    this.codec.leaf(d, pa, prot, l.native);
    this.writeHalves(at, d);
    this.bump(table, 1);
    this.stats.leafWrites++;
    this.stats.leaves++;
    return 0;
  }

  /** Remove the leaf covering `iova`; returns the address just past it, or -1 for a hole. */
  private removeLeafAt(iova: number, gather: IotlbGather | undefined): number {
    let table = this.root;
    for (let d = 0; d < this.levels.length; d++) {
      const l = this.levels[d]!;
      const idx = tableIndex(iova, l.shift, l.entries);
      const at = table + idx * 8;
      this.pathTable[d] = table;
      this.pathIdx[d] = idx;
      const lo = this.mem.read32(at);
      const hi = this.mem.read32(at + 4);
      const kind = this.codec.kind(lo, hi, l.native);
      if (kind === ENTRY_INVALID) return -1;
      if (kind === ENTRY_TABLE) {
        table = this.codec.addr(lo, hi, l.native);
        continue;
      }
      const span = POW2[l.shift]!;
      const base = iova - (iova % span);
      this.clearEntry(at);
      this.bump(table, -1);
      this.stats.leafClears++;
      this.stats.leaves--;
      gather?.add(base, span);
      this.freeEmptyUpwards(d, gather);
      return base + span;
    }
    return -1;
  }

  /** After a failed map, free the tables on `iova`'s path that hold nothing. */
  private prunePath(iova: number): void {
    let table = this.root;
    let depth = 0;
    for (let d = 0; d < this.levels.length; d++) {
      const l = this.levels[d]!;
      const idx = tableIndex(iova, l.shift, l.entries);
      this.pathTable[d] = table;
      this.pathIdx[d] = idx;
      depth = d;
      const at = table + idx * 8;
      const lo = this.mem.read32(at);
      const hi = this.mem.read32(at + 4);
      if (this.codec.kind(lo, hi, l.native) !== ENTRY_TABLE) break;
      table = this.codec.addr(lo, hi, l.native);
      if (d + 1 < this.levels.length && (this.useCount.get(table) ?? 0) === 0) {
        this.pathTable[d + 1] = table;
        depth = d + 1;
        break;
      }
    }
    this.freeEmptyUpwards(depth, undefined);
  }

  /** Free path tables from `depth` up while they are empty (never the root). */
  private freeEmptyUpwards(depth: number, gather: IotlbGather | undefined): void {
    for (let d = depth; d > 0; d--) {
      const t = this.pathTable[d]!;
      if ((this.useCount.get(t) ?? 0) !== 0) return;
      const parent = this.pathTable[d - 1]!;
      this.clearEntry(parent + this.pathIdx[d - 1]! * 8);
      this.bump(parent, -1);
      this.releaseTable(t, d, gather);
    }
  }

  private freeSubtree(table: number, depth: number): void {
    const l = this.levels[depth]!;
    if (depth + 1 < this.levels.length) {
      // The whole table in one read (a domain's teardown visits every entry of every table), a buffer per depth.
      const bytes = l.entries * 8;
      let buf = this.scanBuffers[depth];
      if (buf === undefined || buf.byteLength < bytes) this.scanBuffers[depth] = buf = new DataView(new ArrayBuffer(bytes));
      this.mem.readInto(table, new Uint8Array(buf.buffer, 0, bytes));
      for (let i = 0; i < l.entries; i++) {
        const lo = buf.getUint32(i * 8, true);
        const hi = buf.getUint32(i * 8 + 4, true);
        if (this.codec.kind(lo, hi, l.native) === ENTRY_TABLE) {
          this.freeSubtree(this.codec.addr(lo, hi, l.native), depth + 1);
        }
      }
    }
    this.releaseTable(table, depth, undefined);
  }

  /** freeSubtree's per-depth copies of a table. */
  private readonly scanBuffers: DataView[] = [];

  private allocTable(depth: number): number | undefined {
    const bytes = this.levels[depth]!.tableBytes;
    const pa = this.alloc.alloc(bytes);
    if (pa === undefined) return undefined;
    this.useCount.set(pa, 0);
    this.stats.tablePages++;
    this.stats.tableBytes += bytes;
    return pa;
  }

  private releaseTable(pa: number, depth: number, gather: IotlbGather | undefined): void {
    const bytes = this.levels[depth]!.tableBytes;
    this.useCount.delete(pa);
    this.stats.tablePages--;
    this.stats.tableBytes -= bytes;
    if (gather !== undefined) {
      gather.tablesRemoved = true;
      gather.freed.push(pa, bytes);
    } else {
      this.alloc.free(pa, bytes);
    }
  }

  private bump(table: number, delta: number): void {
    this.useCount.set(table, (this.useCount.get(table) ?? 0) + delta);
  }

  /** Write the high half first: the low half carries the valid/present bits. */
  private writeEntry(at: number, fill: (d: U64Halves) => void): void {
    const d = this.scratch;
    d.lo = 0;
    d.hi = 0;
    fill(d);
    this.writeHalves(at, d);
  }

  private writeHalves(at: number, d: U64Halves): void {
    this.mem.write32(at + 4, d.hi >>> 0);
    this.mem.write32(at, d.lo >>> 0);
  }

  /** Clear the low half (valid/present) first, then the rest. */
  private clearEntry(at: number): void {
    this.mem.write32(at, 0);
    this.mem.write32(at + 4, 0);
  }
}

function isAligned(v: number, align: number): boolean {
  return Number.isInteger(v) && v >= 0 && remPow2(v, align) === 0;
}

/** Finish a factory: the builder, or ENOMEM when the root could not be allocated. */
export function initBuilder<B extends RadixBuilder>(b: B): B | number {
  const rc = b.init();
  return rc < 0 ? rc : b;
}
