/**
 * A small non-negative integer per page frame number (the role of a field in
 * Linux's `struct page` array, mem_map): what the page allocator and the page
 * reference counts keep per run head. 0 means "nothing recorded".
 *
 * Frames are grouped in chunks of 2^10 (4 MiB of RAM, an 8 KiB array; fewer if asked)
 * allocated on first use, so a sparse machine of a terabyte costs only the chunks it
 * touches, a machine built per campaign run zeroes little (2^14-frame chunks cost each
 * machine 128 KiB per table),
 * and a lookup is an index into a typed array instead of a hash-table probe
 * (the allocator and the reference counts are updated for every page a fault
 * maps; a Map of one entry per page grows and rehashes as memory fills).
 */
const CHUNK_BITS = 10;

export class PfnTable {
  private readonly chunks = new Map<number, Float64Array>();
  /** The chunk used last, and its number (most lookups hit the same one). */
  private lastIndex = -1;
  private last: Float64Array | undefined = undefined;
  private readonly chunkSize: number;

  /** `chunkBits`: log2 of the frames per chunk (smaller for a table touched at sparse frames). */
  constructor(chunkBits = CHUNK_BITS) {
    this.chunkSize = 2 ** chunkBits;
  }

  private chunk(pfn: number, create: boolean): Float64Array | undefined {
    const ci = Math.floor(pfn / this.chunkSize);
    if (ci === this.lastIndex) return this.last;
    let c = this.chunks.get(ci);
    if (c === undefined) {
      if (!create) return undefined;
      c = new Float64Array(this.chunkSize);
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
    return c === undefined ? 0 : (c[pfn - this.lastIndex * this.chunkSize] ?? 0);
  }

  /** Set the value of `pfn`, a whole frame number (0 forgets it); `v` a number exact in a double. */
  set(pfn: number, v: number): void {
    const c = this.chunk(pfn, v !== 0);
    if (c !== undefined) c[pfn - this.lastIndex * this.chunkSize] = v;
  }
}
