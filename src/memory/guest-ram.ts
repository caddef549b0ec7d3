import * as phys from './phys-mem.ts';
import type { MemTxResult, PhysMem } from './phys-mem.ts';

// Module-local copies: when tsx loads the tree as CommonJS every use of an imported binding is a getter call, and these sit on the DMA path.
const PAGE_SIZE = phys.PAGE_SIZE;
const MEMTX_OK = phys.MEMTX_OK;
const MEMTX_DECODE_ERROR = phys.MEMTX_DECODE_ERROR;
const FRAME_MASK = PAGE_SIZE - 1;
const TWO_32 = 0x1_0000_0000;
/**
 * Frames are carved from slabs of this many (one ArrayBuffer each, in the
 * order they are first written, wherever they are): an ArrayBuffer per 4 KiB
 * frame cost the SVA fault path more in allocation and GC than the fault
 * itself. Discarded frames are kept (up to SPARE_MAX) and reused, zeroed, so
 * a slab's memory is not held by a few surviving frames.
 */
const SLAB_FRAMES = 64;
const SPARE_MAX = 4096;
/**
 * Copies up to this many bytes within one frame go byte by byte: below it a
 * subarray view costs more than the loop (measured in one process: 1 byte
 * 9 ns by loop, 67 ns by view; 32 bytes 83 / 70; 64 bytes 165 / 68).
 */
const SMALL_COPY = 24;
/**
 * Page-sized views of the buffers recently written from (a power of two),
 * direct-mapped by the page of the buffer offset: a DMA engine's bounce
 * buffer and a device's 64 KiB write buffer are written page by page again
 * and again, and a view made per page cost about 35 ns of a 4 KiB frame's
 * 100 (measured 2026-12-08). Only buffers up to VIEW_BUFFER_MAX bytes are
 * kept, so the cache never holds a large buffer alive.
 */
const VIEWS = 32;
const VIEW_MASK = VIEWS - 1;
const VIEW_BUFFER_MAX = 1 << 20;
/** Slots of the recently used frames (a power of two); their numbers are kept as doubles, exact for any RAM size. */
const RECENT = 16;
const RECENT_MASK = RECENT - 1;

/**
 * Sparse RAM: a large address space costs nothing until it is written. Frames
 * are 4 KiB and allocated on the first write; reads of an untouched frame
 * return zeros without allocating it. Offsets are relative to the start of the
 * RAM block (a MemoryRegion places it in an address space).
 */
export class GuestRam implements PhysMem {
  readonly size: number;
  private readonly frames = new Map<number, Uint8Array>();
  private slab: ArrayBuffer | null = null;
  private slabOff = 0;
  private readonly spare: Uint8Array[] = [];
  /** Frame numbers whose frame is memory owned elsewhere (adoptFrame): never pooled, never zeroed here. */
  private readonly external = new Set<number>();
  /**
   * Frames found lately, direct-mapped by the low bits of their number (-1:
   * empty slot): queue records, descriptors and table entries are read a word
   * at a time, and a page-table walk comes back to the same few tables, so
   * most accesses find their frame here without the Map lookup. Every change
   * of a frame number's frame (discard, adoptFrame, privatizeFrame) empties it.
   */
  private readonly recentFn = new Float64Array(RECENT).fill(-1);
  private readonly recentFrame: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(RECENT).fill(undefined);
  /** The page views of buffers written from (VIEWS): the buffer, the offset in it (-1: empty), the view. */
  private readonly viewBuf: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(VIEWS).fill(undefined);
  private readonly viewAt = new Float64Array(VIEWS).fill(-1);
  private readonly views: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(VIEWS).fill(undefined);

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
      throw new RangeError(`GuestRam size must be a positive multiple of ${PAGE_SIZE}: ${size}`);
    }
    this.size = size;
  }

  /** Frames allocated so far (what the RAM really costs). */
  get residentFrames(): number {
    return this.frames.size;
  }

  get residentBytes(): number {
    return this.frames.size * PAGE_SIZE;
  }

  /** True when [addr, addr+len) lies inside this RAM. */
  contains(addr: number, len: number): boolean {
    return addr >= 0 && len >= 0 && addr + len <= this.size;
  }

  /** The offset of every frame ever written, ascending (snapshots and comparisons of two runs' memory). */
  residentOffsets(): number[] {
    return [...this.frames.keys()].sort((a, b) => a - b).map((fn) => fn * PAGE_SIZE);
  }

  /** The frame holding `addr` if it was ever written, else undefined. */
  peekFrame(addr: number): Uint8Array | undefined {
    const fn = Math.floor(addr / PAGE_SIZE);
    const slot = fn & RECENT_MASK;
    if (this.recentFn[slot] === fn) return this.recentFrame[slot];
    const f = this.frames.get(fn);
    if (f !== undefined) {
      this.recentFn[slot] = fn;
      this.recentFrame[slot] = f;
    }
    return f;
  }

  /** The frame holding `addr`, allocating (zeroed) on first use. */
  frameFor(addr: number): Uint8Array {
    const fn = Math.floor(addr / PAGE_SIZE);
    const slot = fn & RECENT_MASK;
    if (this.recentFn[slot] === fn) return this.recentFrame[slot]!;
    let f = this.frames.get(fn);
    if (f === undefined) {
      f = this.newFrame();
      this.frames.set(fn, f);
    }
    this.recentFn[slot] = fn;
    this.recentFrame[slot] = f;
    return f;
  }

  private forgetRecent(): void {
    this.recentFn.fill(-1);
    this.recentFrame.fill(undefined);
  }

  /** A zeroed frame: a discarded one again, or the next of the current slab. */
  private newFrame(): Uint8Array {
    const old = this.spare.pop();
    if (old !== undefined) return old.fill(0);
    let slab = this.slab;
    if (slab === null || this.slabOff === slab.byteLength) {
      slab = this.slab = new ArrayBuffer(SLAB_FRAMES * PAGE_SIZE);
      this.slabOff = 0;
    }
    const f = new Uint8Array(slab, this.slabOff, PAGE_SIZE);
    this.slabOff += PAGE_SIZE;
    return f;
  }

  /** Drop the frames of a page-aligned range: they read as zero again (like MADV_DONTNEED). An adopted frame goes back to its owner untouched. */
  discard(addr: number, len: number): void {
    const first = Math.ceil(addr / PAGE_SIZE);
    const end = Math.floor((addr + len) / PAGE_SIZE);
    this.forgetRecent();
    for (let fn = first; fn < end; fn++) {
      const f = this.frames.get(fn);
      if (f === undefined) continue;
      this.frames.delete(fn);
      if (this.external.delete(fn)) continue;
      if (this.spare.length < SPARE_MAX) this.spare.push(f);
    }
  }

  /**
   * Back the frame at page-aligned `addr` with `frame`, 4 KiB owned elsewhere
   * (a view of a WebAssembly memory, so a C program's loads and stores and
   * the machine's accesses meet in the same bytes). The frame's current
   * contents are dropped: the caller adopts a page it was just given. An
   * adopted frame is never zeroed or reused here; discard() hands it back.
   */
  adoptFrame(addr: number, frame: Uint8Array): void {
    if (frame.length !== PAGE_SIZE) throw new RangeError(`adoptFrame: a frame is ${PAGE_SIZE} bytes, not ${frame.length}`);
    if (addr % PAGE_SIZE !== 0 || !this.contains(addr, PAGE_SIZE)) throw new RangeError(`adoptFrame: 0x${addr.toString(16)} is not a frame of this RAM`);
    const fn = addr / PAGE_SIZE;
    this.forgetRecent();
    const old = this.frames.get(fn);
    if (old !== undefined && !this.external.has(fn) && this.spare.length < SPARE_MAX) this.spare.push(old);
    this.frames.set(fn, frame);
    this.external.add(fn);
  }

  /** True when the frame at `addr` is adopted memory. */
  isAdopted(addr: number): boolean {
    return this.external.has(Math.floor(addr / PAGE_SIZE));
  }

  /**
   * Give the adopted frame at `addr` a private copy of its bytes: the outside
   * memory goes back to its owner while this frame lives on (a page still
   * pinned for DMA when the program unmapped it). No-op for a frame of our own.
   */
  privatizeFrame(addr: number): void {
    const fn = Math.floor(addr / PAGE_SIZE);
    if (!this.external.delete(fn)) return;
    this.forgetRecent();
    const copy = this.newFrame();
    copy.set(this.frames.get(fn)!);
    this.frames.set(fn, copy);
  }

  read8(addr: number): number {
    if (!this.contains(addr, 1)) return 0xff;
    const f = this.peekFrame(addr);
    return f === undefined ? 0 : f[addr & FRAME_MASK]!;
  }

  read16(addr: number): number {
    if (!this.contains(addr, 2)) return 0xffff;
    const o = addr & FRAME_MASK;
    if (o <= PAGE_SIZE - 2) {
      const f = this.peekFrame(addr);
      return f === undefined ? 0 : f[o]! | (f[o + 1]! << 8);
    }
    return this.read8(addr) | (this.read8(addr + 1) << 8);
  }

  read32(addr: number): number {
    if (!this.contains(addr, 4)) return 0xffffffff;
    return this.read32Inside(addr);
  }

  read32Checked(addr: number): number {
    return this.contains(addr, 4) ? this.read32Inside(addr) : -1;
  }

  private read32Inside(addr: number): number {
    const o = addr & FRAME_MASK;
    if (o <= PAGE_SIZE - 4) {
      const f = this.peekFrame(addr);
      if (f === undefined) return 0;
      return (f[o]! | (f[o + 1]! << 8) | (f[o + 2]! << 16) | (f[o + 3]! << 24)) >>> 0;
    }
    return (this.read16(addr) | (this.read16(addr + 2) << 16)) >>> 0;
  }

  read64(addr: number): bigint {
    const lo = this.read32(addr);
    const hi = this.read32(addr + 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  write8(addr: number, value: number): void {
    if (!this.contains(addr, 1)) return;
    this.frameFor(addr)[addr & FRAME_MASK] = value;
  }

  write16(addr: number, value: number): void {
    if (!this.contains(addr, 2)) return;
    const o = addr & FRAME_MASK;
    if (o <= PAGE_SIZE - 2) {
      const f = this.frameFor(addr);
      f[o] = value;
      f[o + 1] = value >>> 8;
      return;
    }
    this.write8(addr, value);
    this.write8(addr + 1, value >>> 8);
  }

  write32(addr: number, value: number): void {
    if (!this.contains(addr, 4)) return;
    const o = addr & FRAME_MASK;
    if (o <= PAGE_SIZE - 4) {
      const f = this.frameFor(addr);
      f[o] = value;
      f[o + 1] = value >>> 8;
      f[o + 2] = value >>> 16;
      f[o + 3] = value >>> 24;
      return;
    }
    this.write16(addr, value);
    this.write16(addr + 2, value >>> 16);
  }

  write64(addr: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.write32(addr, Number(v & 0xffffffffn));
    this.write32(addr + 4, Number(v >> 32n));
  }

  /** Write a 64-bit value given as two u32 halves (the hot-path form). */
  write64Parts(addr: number, lo: number, hi: number): void {
    this.write32(addr, lo);
    this.write32(addr + 4, hi);
  }

  readInto(addr: number, dst: Uint8Array): MemTxResult {
    return this.copy(addr, dst, 0, dst.length, false);
  }

  writeFrom(addr: number, src: Uint8Array): MemTxResult {
    return this.copy(addr, src, 0, src.length, true);
  }

  /** Copy `len` bytes at `addr` into `dst[dstOff..]`. */
  readRange(addr: number, dst: Uint8Array, dstOff: number, len: number): MemTxResult {
    return this.copy(addr, dst, dstOff, len, false);
  }

  /** Copy `src[srcOff..srcOff+len)` to `addr`. */
  writeRange(addr: number, src: Uint8Array, srcOff: number, len: number): MemTxResult {
    return this.copy(addr, src, srcOff, len, true);
  }

  /**
   * Copy between `buf[off..off+len)` and the RAM at `addr`, frame by frame:
   * into the RAM when `write`, out of it otherwise.
   * A read of a frame never written gives zeros without allocating it; a
   * write allocates the frames it touches. Outside the RAM nothing is
   * copied (a read gives all-ones) and the result is DECODE_ERROR.
   */
  copy(addr: number, buf: Uint8Array, off: number, len: number, write: boolean): MemTxResult {
    if (!this.contains(addr, len)) {
      if (!write) buf.fill(0xff, off, off + len);
      return MEMTX_DECODE_ERROR;
    }
    const o0 = addr & FRAME_MASK;
    if (len > 0 && len <= SMALL_COPY && o0 + len <= PAGE_SIZE) {
      // A few bytes inside one frame (a queue record, a one-byte DMA): copied without a subarray view.
      if (write) {
        const f = this.frameFor(addr);
        for (let k = 0; k < len; k++) f[o0 + k] = buf[off + k]!;
      } else {
        const f = this.peekFrame(addr);
        if (f === undefined) for (let k = 0; k < len; k++) buf[off + k] = 0;
        else for (let k = 0; k < len; k++) buf[off + k] = f[o0 + k]!;
      }
      return MEMTX_OK;
    }
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const o = a & FRAME_MASK;
      const n = Math.min(PAGE_SIZE - o, len - done);
      // A whole frame, or the whole buffer, is copied without making a view of it.
      if (write) {
        const f = this.frameFor(a);
        if (n === buf.length) f.set(buf, o);
        else if (n === PAGE_SIZE) f.set(this.pageView(buf, off + done), o);
        else f.set(buf.subarray(off + done, off + done + n), o);
      } else {
        const f = this.peekFrame(a);
        if (f === undefined) buf.fill(0, off + done, off + done + n);
        else if (n === PAGE_SIZE) buf.set(f, off + done);
        else buf.set(f.subarray(o, o + n), off + done);
      }
      done += n;
    }
    return MEMTX_OK;
  }

  /** `buf[at..at+PAGE_SIZE)` as a view, from the cache of page views (VIEWS) when it was made lately. */
  private pageView(buf: Uint8Array, at: number): Uint8Array {
    const slot = Math.floor(at / PAGE_SIZE) & VIEW_MASK;
    if (this.viewBuf[slot] === buf && this.viewAt[slot] === at) return this.views[slot]!;
    const v = buf.subarray(at, at + PAGE_SIZE);
    if (buf.byteLength <= VIEW_BUFFER_MAX) {
      this.viewBuf[slot] = buf;
      this.viewAt[slot] = at;
      this.views[slot] = v;
    }
    return v;
  }

  /** Fill `len` bytes at `addr` with `byte` (zero-fill of untouched frames allocates nothing). */
  fill(addr: number, byte: number, len: number): MemTxResult {
    if (!this.contains(addr, len)) return MEMTX_DECODE_ERROR;
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const o = a & FRAME_MASK;
      const n = Math.min(PAGE_SIZE - o, len - done);
      if (byte === 0 && this.peekFrame(a) === undefined) {
        done += n;
        continue;
      }
      this.frameFor(a).fill(byte, o, o + n);
      done += n;
    }
    return MEMTX_OK;
  }
}

/** Split helpers shared by anything that stores u64 values as two u32 halves. */
export function u64ToParts(v: bigint): [lo: number, hi: number] {
  const x = BigInt.asUintN(64, v);
  return [Number(x & 0xffffffffn), Number(x >> 32n)];
}

export function partsToNumber(lo: number, hi: number): number {
  return hi * TWO_32 + lo;
}
