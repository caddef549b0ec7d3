/**
 * A C program's memory is its process's memory. The process's user
 * addresses are the offsets of the program's WebAssembly memory: one
 * anonymous area maps it from mmap_min_addr (64 KiB; below it NULL and small
 * pointers stay unmapped, so the kernel answers them -EFAULT) to its end.
 * Whenever a page of that area becomes resident (the kernel touched it:
 * copy_from_user, pinning for DMA, an SVA page fault), the physical page the
 * host allocated takes the WebAssembly page as its RAM frame
 * (GuestRam.adoptFrame), so the program's loads and stores and every device
 * DMA meet in the same bytes, with nothing copied. The bytes a program wrote
 * before the kernel first touched a page are simply there when it does.
 *
 * When a resident page leaves the process (munmap, a MAP_FIXED over it,
 * exit) while something still holds it (a DMA pin), its frame gets a private
 * copy, so the pinner keeps the bytes and the WebAssembly page goes back to
 * the program. A WebAssembly memory's buffer is replaced when it grows (and
 * on `memory.grow(0)`): every call into the host checks, re-adopts the
 * resident pages from the new buffer and extends the area.
 */
import type { Machine } from '../../machines/machine.ts';
import type { Process } from '../../src/host/process.ts';
import type { ResidencyObserver } from '../../src/host/mm.ts';
import type { GuestRam } from '../../src/memory/guest-ram.ts';

const PAGE = 4096;
/** vm.mmap_min_addr (src/host/host.ts): the program's memory is mapped from here. */
export const USER_BASE = 0x1_0000;

export class ProgramMemory implements ResidencyObserver {
  private buffer: ArrayBuffer;
  /** Views of the current buffer. */
  u8: Uint8Array;
  dv: DataView;
  /** End of the area mapped for the program (the memory's size when last seen). */
  private mappedEnd = USER_BASE;
  /** Resident pages of the area: user address -> RAM offset of its frame. */
  private readonly resident = new Map<number, number>();
  private readonly ram: GuestRam;

  constructor(
    private readonly machine: Machine,
    readonly process: Process,
    readonly memory: WebAssembly.Memory,
  ) {
    this.buffer = memory.buffer;
    this.u8 = new Uint8Array(this.buffer);
    this.dv = new DataView(this.buffer);
    this.ram = machine.board.ram;
  }

  /** Map the memory into the process and watch its pages; 0 or -errno. */
  attach(): number {
    this.process.mm.residency = this;
    return this.grow();
  }

  /** Call at every entry into the host: a grown or detached buffer is taken again. */
  refresh(): void {
    if (this.memory.buffer === this.buffer) return;
    this.buffer = this.memory.buffer;
    this.u8 = new Uint8Array(this.buffer);
    this.dv = new DataView(this.buffer);
    for (const [va, off] of this.resident) this.ram.adoptFrame(off, new Uint8Array(this.buffer, va, PAGE));
    this.grow();
  }

  private grow(): number {
    const end = this.buffer.byteLength;
    if (end <= this.mappedEnd) return 0;
    const r = this.process.mmap(end - this.mappedEnd, { addr: BigInt(this.mappedEnd), fixed: true });
    if (r < 0n) return Number(r);
    this.mappedEnd = end;
    return 0;
  }

  /** True when [addr, addr+len) lies in the program's memory (where user addresses are WebAssembly offsets). */
  inside(addr: number, len: number): boolean {
    return addr >= USER_BASE && addr + len <= this.mappedEnd;
  }

  // --- ResidencyObserver ------------------------------------------------------------

  mapped(va: number, pa: number, bytes: number): void {
    if (va < USER_BASE || va + bytes > this.mappedEnd) return;
    const base = this.machine.board.ramOffset(pa);
    if (base === undefined) return;
    for (let o = 0; o < bytes; o += PAGE) {
      this.ram.adoptFrame(base + o, new Uint8Array(this.buffer, va + o, PAGE));
      this.resident.set(va + o, base + o);
    }
  }

  unmapped(va: number, _pa: number, bytes: number, stillReferenced: boolean): void {
    if (va < USER_BASE || va + bytes > this.mappedEnd) return;
    for (let o = 0; o < bytes; o += PAGE) {
      const off = this.resident.get(va + o);
      if (off === undefined) continue;
      this.resident.delete(va + o);
      // Freed pages were handed back by the allocator (GuestRam.discard); a pinned one keeps a copy.
      if (stillReferenced) this.ram.privatizeFrame(off);
    }
  }

  /** Pages the kernel holds as the program's now. */
  get residentPages(): number {
    return this.resident.size;
  }

  /** After exit: nothing of the program stays adopted (the mm teardown handed every page back). */
  detach(): void {
    for (const off of this.resident.values()) this.ram.privatizeFrame(off);
    this.resident.clear();
    if (this.process.mm.residency === this) this.process.mm.residency = undefined;
  }
}
