/**
 * The scalable-mode translation structures the driver keeps in guest memory
 * (VT-d spec §9.2 scalable-mode root entry, §9.4 scalable-mode context
 * entry, §9.5 PASID directory entry, §9.6 PASID table entry; layouts in
 * ../root-context.ts and ../pasid-entry.ts):
 *
 * - one 4 KiB root table, 256 root entries (one per bus), each with a lower
 *   and an upper context table (devfn 0-127 / 128-255) of 128 32-byte
 *   context entries, allocated when the first device of that half is probed;
 * - per device a PASID directory of 2^(PDTS+7) 8-byte entries, each pointing
 *   to a 4 KiB table of 64 64-byte PASID entries, allocated on first use.
 *
 * Entries are written high words first and the word with the present bit
 * last, as a driver must for hardware that may fetch concurrently.
 */
import { ENOMEM } from '../../../src/uapi/errno.ts';
import { encodeLayout } from '../../../src/hw/layout.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { PASID_DIR_ENTRY, pasidDirEntries, pasidDirIndex, pasidTableIndex } from '../pasid-entry.ts';
import { SM_CONTEXT_TABLE_ENTRIES, SM_ROOT_ENTRY, sidBus, sidDevfn } from '../root-context.ts';

/** Physically contiguous, zeroed, size-aligned memory for tables and queues. */
export interface DmaMemory {
  alloc(bytes: number): number | undefined;
  free(pa: number, bytes: number): void;
}

const PAGE = 4096;

function writeEntry(mem: PhysMem, addr: number, words: ArrayLike<number>, n: number): void {
  for (let i = n - 1; i >= 0; i--) mem.write32(addr + 4 * i, words[i] ?? 0);
}

function readEntry(mem: PhysMem, addr: number, n: number): Uint32Array {
  const w = new Uint32Array(n);
  for (let i = 0; i < n; i++) w[i] = mem.read32(addr + 4 * i);
  return w;
}

/** The root table and its context tables. */
export class ContextTables {
  readonly root: number;
  /** bus * 2 + upper -> context table. */
  private readonly tables = new Map<number, number>();

  constructor(
    private readonly mem: PhysMem,
    private readonly dma: DmaMemory,
  ) {
    const root = dma.alloc(PAGE);
    if (root === undefined) throw new Error('VT-d driver: no memory for the root table');
    this.root = root;
  }

  /** Make sure the context table holding `sid` exists; 0 or -ENOMEM. */
  ensure(sid: number): number {
    const bus = sidBus(sid);
    const upper = sidDevfn(sid) >= SM_CONTEXT_TABLE_ENTRIES ? 1 : 0;
    if (this.tables.has(bus * 2 + upper)) return 0;
    const t = this.dma.alloc(PAGE);
    if (t === undefined) return -ENOMEM;
    this.tables.set(bus * 2 + upper, t);
    const lower = this.tables.get(bus * 2);
    const high = this.tables.get(bus * 2 + 1);
    const w = encodeLayout(SM_ROOT_ENTRY, {
      LP: lower === undefined ? 0 : 1, LCTP: (lower ?? 0) / PAGE, UP: high === undefined ? 0 : 1, UCTP: (high ?? 0) / PAGE,
    });
    writeEntry(this.mem, this.root + bus * 16, w, 4);
    return 0;
  }

  private contextAddr(sid: number): number {
    const devfn = sidDevfn(sid);
    const t = this.tables.get(sidBus(sid) * 2 + (devfn >= SM_CONTEXT_TABLE_ENTRIES ? 1 : 0));
    if (t === undefined) throw new Error(`VT-d driver: no context table for SID ${sid}`);
    return t + (devfn % SM_CONTEXT_TABLE_ENTRIES) * 32;
  }

  writeContext(sid: number, words: Uint32Array): void {
    writeEntry(this.mem, this.contextAddr(sid), words, 8);
  }

  readContext(sid: number): Uint32Array {
    return readEntry(this.mem, this.contextAddr(sid), 8);
  }

  clearContext(sid: number): void {
    writeEntry(this.mem, this.contextAddr(sid), new Uint32Array(8), 8);
  }
}

/** One device's PASID directory and PASID tables. */
export class PasidTables {
  readonly dir: number;
  /** PDTS of the context entry: the directory has 2^(pdts+7) entries. */
  readonly pdts: number;
  readonly dirEntries: number;
  private readonly dirBytes: number;
  private readonly tables = new Map<number, number>();

  private constructor(
    private readonly mem: PhysMem,
    private readonly dma: DmaMemory,
    dir: number,
    pdts: number,
  ) {
    this.dir = dir;
    this.pdts = pdts;
    this.dirEntries = 2 ** (pdts + 7);
    this.dirBytes = Math.max(PAGE, this.dirEntries * 8);
  }

  /** A directory for PASIDs 0 .. 2^pasidBits - 1 (at least the 128 entries PDTS = 0 gives). */
  static create(mem: PhysMem, dma: DmaMemory, pasidBits: number): PasidTables | number {
    const entries = Math.max(128, pasidDirEntries(pasidBits));
    const pdts = Math.min(7, Math.log2(entries) - 7);
    const dir = dma.alloc(Math.max(PAGE, 2 ** (pdts + 7) * 8));
    if (dir === undefined) return -ENOMEM;
    return new PasidTables(mem, dma, dir, pdts);
  }

  /** Address of the PASID entry, allocating its table; -ENOMEM. */
  entryAddr(pasid: number, allocate: boolean): number {
    const di = pasidDirIndex(pasid);
    let t = this.tables.get(di);
    if (t === undefined) {
      if (!allocate) return -1;
      const pa = this.dma.alloc(PAGE);
      if (pa === undefined) return -ENOMEM;
      this.tables.set(di, (t = pa));
      writeEntry(this.mem, this.dir + di * 8, encodeLayout(PASID_DIR_ENTRY, { P: 1, SMPTBLPTR: pa / PAGE }), 2);
    }
    return t + pasidTableIndex(pasid) * 64;
  }

  /** The PASID entry's 16 dwords (zeros when its table does not exist). */
  read(pasid: number): Uint32Array {
    const a = this.entryAddr(pasid, false);
    return a < 0 ? new Uint32Array(16) : readEntry(this.mem, a, 16);
  }

  /** 0 or -ENOMEM. */
  write(pasid: number, words: Uint32Array): number {
    const a = this.entryAddr(pasid, true);
    if (a < 0) return a;
    writeEntry(this.mem, a, words, 16);
    return 0;
  }

  /** Clear the whole entry (Linux pasid_clear_entry; the teardown never needs pasid_clear_entry_with_fpd, see the driver). */
  clear(pasid: number): void {
    const a = this.entryAddr(pasid, false);
    if (a < 0) return;
    writeEntry(this.mem, a, new Uint32Array(16), 16);
  }

  /** Clear only P (Linux pasid_clear_present: bit 0 of qword 0), the rest of the entry kept. */
  clearPresent(pasid: number): void {
    const a = this.entryAddr(pasid, false);
    if (a >= 0) this.mem.write32(a, this.mem.read32(a) & ~1);
  }

  free(): void {
    for (const t of this.tables.values()) this.dma.free(t, PAGE);
    this.tables.clear();
    this.dma.free(this.dir, this.dirBytes);
  }
}
