/**
 * A small non-negative integer per page frame number (the role of a field in
 * Linux's `struct page` array, mem_map): what the page allocator and the page
 * reference counts keep per run head. 0 means "nothing recorded".
 *
 * Frames are grouped in chunks of 2^14 (64 MiB of RAM) allocated on first
 * use, so a sparse machine of a terabyte costs only the chunks it touches,
 * and a lookup is an index into a typed array instead of a hash-table probe
 * (the allocator and the reference counts are updated for every page a fault
 * maps; a Map of one entry per page grows and rehashes as memory fills).
 */
const CHUNK_BITS = 14;
const CHUNK = 2 ** CHUNK_BITS;

export class PfnTable {
  private readonly chunks = new Map<number, Int32Array>();
  /** The chunk used last, and its number (most lookups hit the same one). */
  private lastIndex = -1;
  private last: Int32Array | undefined = undefined;

  private chunk(pfn: number, create: boolean): Int32Array | undefined {
    const ci = Math.floor(pfn / CHUNK);
    if (ci === this.lastIndex) return this.last;
    let c = this.chunks.get(ci);
    if (c === undefined) {
      if (!create) return undefined;
      c = new Int32Array(CHUNK);
      this.chunks.set(ci, c);
    }
    this.lastIndex = ci;
    this.last = c;
    return c;
  }

  /** The value of `pfn` (0 when none was set). */
  get(pfn: number): number {
    const c = this.chunk(pfn, false);
    // A fractional frame number (an unaligned address) indexes nothing: undefined, so 0.
    return c === undefined ? 0 : (c[pfn % CHUNK] ?? 0);
  }

  /** Set the value of `pfn`, a whole frame number (0 forgets it); `v` must fit in 31 bits. */
  set(pfn: number, v: number): void {
    const c = this.chunk(pfn, v !== 0);
    if (c !== undefined) c[pfn % CHUNK] = v;
  }
}
