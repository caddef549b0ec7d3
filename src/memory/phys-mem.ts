/**
 * The small interface through which models and the host touch guest physical
 * memory (the rust-vmm `GuestMemory` idea): little-endian scalar accessors and
 * bulk copies at a physical address. Addresses are JS numbers (exact below
 * 2^53, which covers every 52-bit physical address); 64-bit values are split
 * into two u32 halves on hot paths and offered as bigint for convenience.
 *
 * Every access reports nothing on failure: reads of nothing return all-ones,
 * writes to nothing are dropped. Callers that must know whether an access
 * reached something (a page walk that must raise an external abort, a DMA
 * that must complete with Unsupported Request) use `readInto`/`writeFrom`,
 * which return a MemTxResult.
 */
export type MemTxResult = 0 | 1 | 2;
export const MEMTX_OK: MemTxResult = 0;
/** Nothing decodes the address (PCIe: Unsupported Request / master abort). */
export const MEMTX_DECODE_ERROR: MemTxResult = 1;
/** Something decoded it but refused (PCIe: Completer Abort; external abort on a walk). */
export const MEMTX_DEVICE_ERROR: MemTxResult = 2;

export interface PhysMem {
  read8(addr: number): number;
  read16(addr: number): number;
  read32(addr: number): number;
  /**
   * A u32 read that reports failure: the value (0..2^32-1), or -1 when the
   * access reached nothing or was refused. Page walks use it so a table in
   * unbacked or faulting memory becomes an external abort, not all-ones.
   */
  read32Checked(addr: number): number;
  /** Exact 64-bit read. */
  read64(addr: number): bigint;
  write8(addr: number, value: number): void;
  write16(addr: number, value: number): void;
  write32(addr: number, value: number): void;
  write64(addr: number, value: bigint): void;
  /** write64 of `hi * 2^32 + lo`, for callers that hold the value as two u32 halves (no bigint on the way). */
  write64Parts(addr: number, lo: number, hi: number): void;
  /** Copy `dst.length` bytes from `addr` into `dst`. */
  readInto(addr: number, dst: Uint8Array): MemTxResult;
  /** Copy all of `src` to `addr`. */
  writeFrom(addr: number, src: Uint8Array): MemTxResult;
}

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
