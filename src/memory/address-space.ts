import type { Tracer } from '../trace/tracer.ts';
import { findRange, flatten, type FlatRange } from './flat-view.ts';
import type { AccessSize, MemoryRegion } from './memory-region.ts';
import * as phys from './phys-mem.ts';
import type { MemTxResult, PhysMem } from './phys-mem.ts';

// Module-local copies of hot constants (imported bindings are getter calls when tsx loads the tree as CommonJS).
const MEMTX_OK = phys.MEMTX_OK;
const MEMTX_DECODE_ERROR = phys.MEMTX_DECODE_ERROR;
const MEMTX_DEVICE_ERROR = phys.MEMTX_DEVICE_ERROR;

const ONES = [0, 0xff, 0xffff, 0, 0xffffffff];

/**
 * A view of a region tree as one flat address space (QEMU's AddressSpace):
 * the system memory the CPU and the IOMMU see, or a device's view behind it.
 * Accesses dispatch to RAM or MMIO by address. An access to nothing reads
 * all-ones, drops writes, emits `mem.unassigned` and never throws.
 */
export class AddressSpace implements PhysMem {
  readonly name: string;
  readonly root: MemoryRegion;
  private ranges: FlatRange[] = [];
  private dirty = true;
  private last: FlatRange | undefined;
  private readonly tracer: Tracer | undefined;
  private readonly scratch = new Uint8Array(8);

  constructor(name: string, root: MemoryRegion, tracer?: Tracer) {
    this.name = name;
    this.root = root;
    this.tracer = tracer;
    root.onChange(() => {
      this.dirty = true;
      this.last = undefined;
    });
  }

  /** The flattened map (re-rendered lazily after a topology change). */
  flatRanges(): readonly FlatRange[] {
    this.refresh();
    return this.ranges;
  }

  /** The leaf range serving `addr`, or undefined when nothing decodes it. */
  lookup(addr: number): FlatRange | undefined {
    const l = this.last;
    if (l !== undefined && addr >= l.start && addr < l.end) return l;
    this.refresh();
    const r = findRange(this.ranges, addr);
    if (r !== undefined) this.last = r;
    return r;
  }

  private refresh(): void {
    if (!this.dirty) return;
    this.ranges = flatten(this.root);
    this.dirty = false;
    this.last = undefined;
  }

  // --- scalar accessors -------------------------------------------------

  read8(addr: number): number {
    return this.readScalar(addr, 1);
  }
  read16(addr: number): number {
    return this.readScalar(addr, 2);
  }
  read32(addr: number): number {
    return this.readScalar(addr, 4);
  }
  read32Checked(addr: number): number {
    const r = this.lookup(addr);
    if (r !== undefined && addr + 4 <= r.end) {
      const off = addr - r.start + r.offset;
      if (r.region.kind === 'ram') return r.region.ram!.read32Checked(r.region.ramOffset + off);
      // The same access read32 makes: refused (size/alignment) means -1, not all-ones.
      return this.accessOk(r, off, 4, false) ? r.region.ops!.read(off, 4) >>> 0 : -1;
    }
    return this.readInto(addr, this.scratch.subarray(0, 4)) === MEMTX_OK ? this.scratchU32(0) : -1;
  }
  read64(addr: number): bigint {
    const r = this.lookup(addr);
    if (r !== undefined && addr + 8 <= r.end) {
      const off = addr - r.start + r.offset;
      if (r.region.kind === 'ram') return r.region.ram!.read64(r.region.ramOffset + off);
      // One 8-byte access, checked against the region's rules as a whole (as
      // write64 is), then given whole to handlers that take it, else split
      // into two 4-byte accesses, low half first.
      if (!this.accessOk(r, off, 8, false)) return 0xffffffffffffffffn;
      const ops = r.region.ops!;
      if (ops.read64 !== undefined) return BigInt.asUintN(64, ops.read64(off));
      const lo = ops.read(off, 4) >>> 0;
      const hi = ops.read(off + 4, 4) >>> 0;
      return (BigInt(hi) << 32n) | BigInt(lo);
    }
    // Straddling ranges or hitting nothing: one access piece by piece (one
    // mem.unassigned event for the part that hits nothing).
    const s = this.scratch;
    this.readInto(addr, s);
    return (BigInt(this.scratchU32(4)) << 32n) | BigInt(this.scratchU32(0));
  }
  write8(addr: number, value: number): void {
    this.writeScalar(addr, 1, value);
  }
  write16(addr: number, value: number): void {
    this.writeScalar(addr, 2, value);
  }
  write32(addr: number, value: number): void {
    this.writeScalar(addr, 4, value);
  }
  write64(addr: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.write64Parts(addr, Number(v & 0xffffffffn), Number(v >> 32n));
  }

  write64Parts(addr: number, lo: number, hi: number): void {
    lo >>>= 0;
    hi >>>= 0;
    const r = this.lookup(addr);
    if (r !== undefined && addr + 8 <= r.end) {
      const off = addr - r.start + r.offset;
      if (r.region.kind === 'mmio') this.mmioWrite(r, off, 8, lo, hi);
      else r.region.ram!.write64Parts(r.region.ramOffset + off, lo, hi);
      return;
    }
    const s = this.scratch;
    for (let i = 0; i < 4; i++) {
      s[i] = lo >>> (8 * i);
      s[4 + i] = hi >>> (8 * i);
    }
    this.writeFrom(addr, s);
  }

  private readScalar(addr: number, size: AccessSize): number {
    const r = this.lookup(addr);
    if (r !== undefined && addr + size <= r.end) {
      const off = addr - r.start + r.offset;
      if (r.region.kind === 'ram') {
        const ram = r.region.ram!;
        const a = r.region.ramOffset + off;
        return size === 4 ? ram.read32(a) : size === 2 ? ram.read16(a) : ram.read8(a);
      }
      return this.mmioRead(r, off, size);
    }
    const s = this.scratch.subarray(0, size);
    this.readInto(addr, s);
    return size === 4 ? this.scratchU32(0) : size === 2 ? s[0]! | (s[1]! << 8) : s[0]!;
  }

  private writeScalar(addr: number, size: AccessSize, value: number): void {
    const r = this.lookup(addr);
    if (r !== undefined && addr + size <= r.end) {
      const off = addr - r.start + r.offset;
      if (r.region.kind === 'ram') {
        const ram = r.region.ram!;
        const a = r.region.ramOffset + off;
        if (size === 4) ram.write32(a, value);
        else if (size === 2) ram.write16(a, value);
        else ram.write8(a, value);
        return;
      }
      this.mmioWrite(r, off, size, value, 0);
      return;
    }
    const s = this.scratch.subarray(0, size);
    for (let i = 0; i < size; i++) s[i] = value >>> (8 * i);
    this.writeFrom(addr, s);
  }

  private scratchU32(at: number): number {
    const s = this.scratch;
    return (s[at]! | (s[at + 1]! << 8) | (s[at + 2]! << 16) | (s[at + 3]! << 24)) >>> 0;
  }

  // --- MMIO -----------------------------------------------------------

  private accessOk(r: FlatRange, off: number, size: number, write: boolean): boolean {
    const rules = r.region.rules;
    if (size >= rules.minAccess && size <= rules.maxAccess && (rules.unaligned || off % size === 0)) return true;
    this.tracer?.trace('mem.invalid-access', this.name, { region: r.region.name, offset: off, size, write });
    return false;
  }

  /** Returns the value, or all-ones for an access the region refuses. */
  private mmioRead(r: FlatRange, off: number, size: AccessSize): number {
    if (!this.accessOk(r, off, size, false)) return ONES[size]!;
    // Only the bytes of the access, whatever the handler returned.
    return (r.region.ops!.read(off, size) & ONES[size]!) >>> 0;
  }

  private mmioWrite(r: FlatRange, off: number, size: 1 | 2 | 4 | 8, lo: number, hi: number): boolean {
    if (!this.accessOk(r, off, size, true)) return false;
    const ops = r.region.ops!;
    if (size === 8 && ops.write64 !== undefined) {
      ops.write64(off, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
    } else if (size === 8) {
      ops.write(off, 4, lo >>> 0);
      ops.write(off + 4, 4, hi >>> 0);
    } else {
      ops.write(off, size, (lo & ONES[size]!) >>> 0);
    }
    return true;
  }

  // --- bulk -----------------------------------------------------------

  readInto(addr: number, dst: Uint8Array): MemTxResult {
    return this.copy(addr, dst, 0, dst.length, false);
  }

  writeFrom(addr: number, src: Uint8Array): MemTxResult {
    return this.copy(addr, src, 0, src.length, true);
  }

  /** Read `len` bytes at `addr` into `dst[dstOff..]`, piece by piece across regions. */
  readRange(addr: number, dst: Uint8Array, dstOff: number, len: number): MemTxResult {
    return this.copy(addr, dst, dstOff, len, false);
  }

  /** Write `src[srcOff..srcOff+len)` at `addr`, piece by piece across regions. */
  writeRange(addr: number, src: Uint8Array, srcOff: number, len: number): MemTxResult {
    return this.copy(addr, src, srcOff, len, true);
  }

  /**
   * One bulk access between `buf[off..off+len)` and the space at `addr`
   * (a write when `write`, from buf into the space; else a read into buf),
   * split where it crosses from one range to the next: RAM copies, MMIO in
   * the widest accesses the region takes, and gaps (reads see all-ones,
   * writes are dropped, each reported once). The result is OK, or the
   * error of the last part that failed (DECODE_ERROR for a gap,
   * DEVICE_ERROR for a region that refused).
   */
  copy(addr: number, buf: Uint8Array, off: number, len: number, write: boolean): MemTxResult {
    let result: MemTxResult = MEMTX_OK;
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const r = this.lookup(a);
      if (r === undefined) {
        const n = Math.min(len - done, this.gapLength(a));
        if (!write) buf.fill(0xff, off + done, off + done + n);
        this.unassigned(a, n, write);
        result = MEMTX_DECODE_ERROR;
        done += n;
        continue;
      }
      const n = Math.min(len - done, r.end - a);
      const at = a - r.start + r.offset;
      const region = r.region;
      if (region.kind === 'ram') {
        region.ram!.copy(region.ramOffset + at, buf, off + done, n, write);
      } else if (!(write ? this.mmioWriteBytes(r, at, buf, off + done, n) : this.mmioReadBytes(r, at, buf, off + done, n))) {
        result = MEMTX_DEVICE_ERROR;
      }
      done += n;
    }
    return result;
  }

  /** Bytes from `addr` to the next decoded range (or the end of the space). */
  private gapLength(addr: number): number {
    this.refresh();
    for (const r of this.ranges) if (r.start > addr) return r.start - addr;
    // Past the last range: the rest of the access (even beyond the root) is one gap.
    return Number.POSITIVE_INFINITY;
  }

  private unassigned(addr: number, size: number, write: boolean): void {
    this.tracer?.trace('mem.unassigned', this.name, { as: this.name, addr, size, write });
  }

  /** Split a bulk MMIO access into the widest aligned accesses the region accepts. */
  private mmioReadBytes(r: FlatRange, off: number, dst: Uint8Array, at: number, len: number): boolean {
    let ok = true;
    let i = 0;
    while (i < len) {
      const size = this.chunkSize(r, off + i, len - i);
      if (size === 0) {
        ok = false;
        this.tracer?.trace('mem.invalid-access', this.name, { region: r.region.name, offset: off + i, size: 1, write: false });
      }
      const v = size === 0 ? 0xff : this.mmioRead(r, off + i, size);
      const n = size === 0 ? 1 : size;
      for (let b = 0; b < n; b++) dst[at + i + b] = v >>> (8 * b);
      i += n;
    }
    return ok;
  }

  private mmioWriteBytes(r: FlatRange, off: number, src: Uint8Array, at: number, len: number): boolean {
    let ok = true;
    let i = 0;
    while (i < len) {
      const size = this.chunkSize(r, off + i, len - i);
      if (size === 0) {
        ok = false;
        this.tracer?.trace('mem.invalid-access', this.name, { region: r.region.name, offset: off + i, size: 1, write: true });
        i++;
        continue;
      }
      let v = 0;
      for (let b = 0; b < size; b++) v |= src[at + i + b]! << (8 * b);
      this.mmioWrite(r, off + i, size, v >>> 0, 0);
      i += size;
    }
    return ok;
  }

  /** Widest of 4/2/1 that is aligned, fits and is allowed; 0 when none is. */
  private chunkSize(r: FlatRange, off: number, remaining: number): AccessSize | 0 {
    const { minAccess, maxAccess, unaligned } = r.region.rules;
    for (const size of [4, 2, 1] as const) {
      if (size > remaining || size > maxAccess || size < minAccess) continue;
      if (unaligned || off % size === 0) return size;
    }
    return 0;
  }
}
