import { encodeLayout, readField, writeField } from '../../../src/hw/layout.ts';
import type { PhysMem } from '../../../src/memory/phys-mem.ts';
import { CD_LAYOUT, L1CD_LAYOUT } from '../cd.ts';
import { L1STD_LAYOUT, S1FMT, STE_LAYOUT } from '../ste.ts';

/** Physically contiguous, zeroed, size-aligned memory for tables and queues. */
export interface DmaMemory {
  alloc(bytes: number): number | undefined;
  free(pa: number, bytes: number): void;
}

export const STRTAB_SPLIT = 8;
const STE_BYTES = 64;
const CD_BYTES = 64;
/** CDs per level-2 CD table with S1Fmt = 64K leaves (Linux CTXDESC_SPLIT 10). */
const CD_L2_ENTRIES = 1024;

function writeWords(mem: PhysMem, addr: number, words: Uint32Array): void {
  for (let i = 0; i < words.length; i++) mem.write32(addr + 4 * i, words[i]!);
}

/**
 * A 2-level stream table (arm_smmu_init_strtab_2lvl): level-1 descriptors
 * for 2^SPLIT StreamIDs each, level-2 arrays of STEs allocated when the
 * first device of their span is probed.
 */
export class StreamTable {
  readonly l1Base: number;
  readonly l1Entries: number;
  private readonly l2 = new Map<number, number>();

  constructor(
    private readonly mem: PhysMem,
    private readonly dma: DmaMemory,
    readonly sidBits: number,
  ) {
    this.l1Entries = 2 ** Math.max(0, sidBits - STRTAB_SPLIT);
    const base = dma.alloc(Math.max(64, this.l1Entries * 8));
    if (base === undefined) throw new Error('SMMUv3 driver: no memory for the stream table');
    this.l1Base = base;
  }

  /** Make sure the STE for `sid` exists; -12 when memory runs out. */
  ensure(sid: number): number {
    const i = sid >>> STRTAB_SPLIT;
    if (this.l2.has(i)) return 0;
    const bytes = STE_BYTES * 2 ** STRTAB_SPLIT;
    const l2 = this.dma.alloc(bytes);
    if (l2 === undefined) return -12;
    this.l2.set(i, l2);
    writeWords(this.mem, this.l1Base + 8 * i, encodeLayout(L1STD_LAYOUT, { Span: STRTAB_SPLIT + 1, L2Ptr: l2 / 64 }));
    return 0;
  }

  steAddr(sid: number): number {
    const l2 = this.l2.get(sid >>> STRTAB_SPLIT);
    if (l2 === undefined) throw new Error(`no level-2 stream table for SID ${sid}`);
    return l2 + STE_BYTES * (sid % 2 ** STRTAB_SPLIT);
  }

  /**
   * Write an STE the way Linux's arm_smmu_write_ste does for a live entry:
   * the words other than the first go in first, then word 0 (V, Config), so
   * the SMMU never sees a half-written valid entry. The caller issues CFGI_STE.
   */
  writeSte(sid: number, words: Uint32Array): void {
    const a = this.steAddr(sid);
    for (let i = words.length - 1; i >= 0; i--) this.mem.write32(a + 4 * i, words[i]!);
  }

  readSte(sid: number): Uint32Array {
    const a = this.steAddr(sid);
    const w = new Uint32Array(16);
    for (let i = 0; i < 16; i++) w[i] = this.mem.read32(a + 4 * i);
    return w;
  }
}

/**
 * A device's context-descriptor table (arm_smmu_alloc_cd_tables): linear
 * when it holds at most 1024 CDs, otherwise two levels with 64 KiB leaves
 * allocated on demand. Index = SubstreamID.
 */
export class CdTable {
  readonly base: number;
  readonly fmt: number;
  readonly maxCds: number;
  private readonly l2 = new Map<number, number>();

  private constructor(
    private readonly mem: PhysMem,
    private readonly dma: DmaMemory,
    base: number,
    fmt: number,
    maxCds: number,
  ) {
    this.base = base;
    this.fmt = fmt;
    this.maxCds = maxCds;
  }

  static create(mem: PhysMem, dma: DmaMemory, ssidBits: number): CdTable | number {
    const maxCds = 2 ** ssidBits;
    if (maxCds <= CD_L2_ENTRIES) {
      const base = dma.alloc(Math.max(64, maxCds * CD_BYTES));
      return base === undefined ? -12 : new CdTable(mem, dma, base, S1FMT.LINEAR, maxCds);
    }
    const base = dma.alloc(Math.max(64, (maxCds / CD_L2_ENTRIES) * 8));
    return base === undefined ? -12 : new CdTable(mem, dma, base, S1FMT.L2_64K, maxCds);
  }

  /** Address of CD `ssid`, allocating its leaf table if needed; -12 when out of memory. */
  cdAddr(ssid: number, allocate: boolean): number {
    if (this.fmt === S1FMT.LINEAR) return this.base + CD_BYTES * ssid;
    const i = Math.floor(ssid / CD_L2_ENTRIES);
    let leaf = this.l2.get(i);
    if (leaf === undefined) {
      if (!allocate) return -1;
      leaf = this.dma.alloc(CD_L2_ENTRIES * CD_BYTES);
      if (leaf === undefined) return -12;
      this.l2.set(i, leaf);
      writeWords(this.mem, this.base + 8 * i, encodeLayout(L1CD_LAYOUT, { V: 1, L2Ptr: leaf / 4096 }));
    }
    return leaf + CD_BYTES * (ssid % CD_L2_ENTRIES);
  }

  /** Install a CD, word 0 (with V) last; 0 or -12. */
  writeCd(ssid: number, words: Uint32Array): number {
    const a = this.cdAddr(ssid, true);
    if (a < 0) return a;
    for (let i = words.length - 1; i >= 0; i--) this.mem.write32(a + 4 * i, words[i]!);
    return 0;
  }

  /** Clear a CD's V bit (the rest may stay; an invalid CD is never used). */
  clearCd(ssid: number): void {
    const a = this.cdAddr(ssid, false);
    if (a < 0) return;
    const w0 = new Uint32Array([this.mem.read32(a)]);
    writeField(CD_LAYOUT, w0, 'V', 0);
    this.mem.write32(a, w0[0]!);
  }

  cdValid(ssid: number): boolean {
    const a = this.cdAddr(ssid, false);
    return a >= 0 && readField(CD_LAYOUT, [this.mem.read32(a)], 'V') === 1;
  }

  free(): void {
    for (const leaf of this.l2.values()) this.dma.free(leaf, CD_L2_ENTRIES * CD_BYTES);
    this.dma.free(this.base, this.fmt === S1FMT.LINEAR ? Math.max(64, this.maxCds * CD_BYTES) : Math.max(64, (this.maxCds / CD_L2_ENTRIES) * 8));
  }
}

export { STE_LAYOUT };
