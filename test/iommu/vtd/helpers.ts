/**
 * VT-d test fixture: a q35-vtd board with the model's registers at
 * layout.iommuBase, the model as the root complex's remapper and one bare
 * endpoint at 00:01.0. Tests program the unit as a driver would: encode
 * entries and descriptors with the shared layouts, write them to guest
 * memory, and poke registers through system memory.
 */
import { Board } from '../../../machines/board.ts';
import { encodeLayout, decodeLayout, type Layout } from '../../../src/hw/layout.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import type { DmaAttrs, DmaResult } from '../../../src/pci/transaction.ts';
import { createIa32eBuilder, createVtdSsBuilder, type Ia32eBuilderConfig, type TablePageAllocator, type VtdSsBuilderConfig } from '../../../iommu/pgtable/index.ts';
import { VtdIommu, type VtdOptions } from '../../../iommu/vtd/vtd.ts';
import {
  CONTEXT_ENTRY, FRCD_F_DWORD, FRCD_REG_OFFSET, GCMD_QIE, GCMD_SRTP, GCMD_TE, GSTS_ONE_SHOT, PASID_DIR_ENTRY, PASID_ENTRY,
  ROOT_ENTRY, SM_CONTEXT_ENTRY, SM_CONTEXT_TABLE_ENTRIES, SM_ROOT_ENTRY, VTD_FRCD, VTD_REG, VTD_REGS, descTypeFields, pasidDirIndex,
  pasidTableIndex, sidBus, sidDevfn,
} from '../../../iommu/vtd/index.ts';
import { BareFunction } from '../../pci/helpers.ts';

export const R = VTD_REG;
/** GSTS bits that are not one-shot status (RTPS, FLS, WBFS, IRTPS, masked before writing GCMD back, §10.4.4): 0x96FF_FFFF. */
export const ONE_SHOT_MASK = ~GSTS_ONE_SHOT >>> 0;
export const PAGE = 4096;

/** Bump allocator of zeroed, size-aligned table pages in guest RAM. */
export class PageAlloc implements TablePageAllocator {
  constructor(
    private readonly board: Board,
    private next: number,
    private readonly limit: number,
  ) {}
  alloc(bytes: number): number | undefined {
    const a = Math.ceil(this.next / bytes) * bytes;
    if (a + bytes > this.limit) return undefined;
    this.next = a + bytes;
    this.board.discardRam(a, bytes);
    return a;
  }
  free(): void {}
}

export class Fx {
  readonly board: Board;
  readonly vtd: VtdIommu;
  readonly base: number;
  readonly dev: BareFunction;
  readonly alloc: PageAlloc;
  private qBase = 0;
  private qBytes = 0;
  private qDesc = 32;
  private tail = 0;

  constructor(opts: VtdOptions = {}) {
    this.board = new Board('q35-vtd', { ramBytes: 2 ** 30 });
    this.vtd = new VtdIommu(this.board, this.board.sysmem, opts);
    this.base = this.board.layout.iommuBase;
    this.board.sysmemRoot.addSubregion(this.base, this.vtd.region, 1);
    this.board.rc.remapper = this.vtd;
    this.dev = new BareFunction('dev');
    this.board.rc.plug(this.dev, 1);
    this.dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
    this.alloc = new PageAlloc(this.board, 0x100_0000, 0x1000_0000);
  }

  get mem() {
    return this.board.sysmem;
  }
  get sid(): number {
    return this.dev.requesterId;
  }

  r32(off: number): number {
    return this.mem.read32(this.base + off);
  }
  w32(off: number, v: number): void {
    this.mem.write32(this.base + off, v >>> 0);
  }
  r64(off: number): bigint {
    return this.mem.read64(this.base + off);
  }
  w64(off: number, v: number | bigint): void {
    this.mem.write64(this.base + off, BigInt(v));
  }

  /** Set or clear one GCMD command bit the way the spec prescribes (read GSTS, mask one-shots, write GCMD). */
  gcmd(bit: number, on: boolean): number {
    const sts = this.r32(R.GSTS!) & ONE_SHOT_MASK;
    this.w32(R.GCMD!, on ? sts | bit : sts & ~bit);
    return this.r32(R.GSTS!);
  }

  setRoot(addr: number, ttm: number): void {
    this.w64(R.RTADDR!, VTD_REGS.pack64('RTADDR', { RTA: addr / PAGE, TTM: ttm }));
    this.gcmd(GCMD_SRTP, true);
  }

  enable(): void {
    this.gcmd(GCMD_TE, true);
  }

  page(): number {
    return this.alloc.alloc(PAGE)!;
  }

  write(addr: number, layout: Layout, fields: Record<string, number>): void {
    const w = encodeLayout(layout, fields);
    for (let i = 0; i < w.length; i++) this.mem.write32(addr + 4 * i, w[i]!);
  }

  /** Legacy mode: root table with the device's context entry; returns the context entry address. */
  legacy(ctx: Record<string, number>, sid = this.sid): number {
    const root = this.page();
    const ctxTable = this.page();
    this.write(root + sidBus(sid) * 16, ROOT_ENTRY, { P: 1, CTP: ctxTable / PAGE });
    const at = ctxTable + sidDevfn(sid) * 16;
    this.write(at, CONTEXT_ENTRY, { P: 1, ...ctx });
    this.setRoot(root, 0);
    return at;
  }

  /** Scalable mode: root, context entry (PASIDE set) and a PASID directory; returns their addresses. */
  scalable(ctx: Record<string, number> = {}, sid = this.sid): { root: number; ctxAt: number; dir: number } {
    const root = this.page();
    const ctxTable = this.page();
    const dir = this.page();
    const devfn = sidDevfn(sid);
    const upper = devfn >= SM_CONTEXT_TABLE_ENTRIES;
    this.write(root + sidBus(sid) * 16, SM_ROOT_ENTRY, upper ? { UP: 1, UCTP: ctxTable / PAGE } : { LP: 1, LCTP: ctxTable / PAGE });
    const ctxAt = ctxTable + (devfn % SM_CONTEXT_TABLE_ENTRIES) * 32;
    this.write(ctxAt, SM_CONTEXT_ENTRY, { P: 1, PASIDE: 1, PDTS: 7, PASIDDIRPTR: dir / PAGE, ...ctx });
    this.setRoot(root, 1);
    return { root, ctxAt, dir };
  }

  private pasidTables = new Map<string, number>();

  /** Write the PASID entry of `pasid` under directory `dir` (creating its directory entry); returns its address. */
  pasid(dir: number, pasid: number, fields: Record<string, number>): number {
    const key = `${dir}:${pasidDirIndex(pasid)}`;
    let table = this.pasidTables.get(key);
    if (table === undefined) {
      table = this.page();
      this.pasidTables.set(key, table);
      this.write(dir + pasidDirIndex(pasid) * 8, PASID_DIR_ENTRY, { P: 1, SMPTBLPTR: table / PAGE });
    }
    const at = table + pasidTableIndex(pasid) * 64;
    this.write(at, PASID_ENTRY, { P: 1, ...fields });
    return at;
  }

  ss(cfg: Partial<VtdSsBuilderConfig> = {}) {
    const b = createVtdSsBuilder(this.mem, this.alloc, { levels: 4, haw: 48, ...cfg });
    if (typeof b === 'number') throw new Error(`ss builder: ${b}`);
    return b;
  }

  fs(cfg: Partial<Ia32eBuilderConfig> = {}) {
    const b = createIa32eBuilder(this.mem, this.alloc, { levels: 4, maxPhysBits: 48, ...cfg });
    if (typeof b === 'number') throw new Error(`fs builder: ${b}`);
    return b;
  }

  read(addr: number, len = 4, attrs?: DmaAttrs): DmaResult {
    return this.dev.dmaRead(BigInt(addr), len, attrs);
  }
  writeDma(addr: number, data: Uint8Array | number[], attrs?: DmaAttrs): DmaResult {
    return this.dev.dmaWrite(BigInt(addr), Uint8Array.from(data), attrs);
  }
  /** The fault name of a failed DMA, '' when it succeeded. */
  fault(r: DmaResult): string {
    return r.ok ? '' : r.fault;
  }

  /** Fault recording register `i`, decoded. */
  frcd(i: number): Record<string, number> {
    const off = FRCD_REG_OFFSET + 16 * i;
    return decodeLayout(VTD_FRCD, [this.r32(off), this.r32(off + 4), this.r32(off + 8), this.r32(off + 12)]);
  }
  clearFrcd(i: number): void {
    this.w32(FRCD_REG_OFFSET + 16 * i + 12, FRCD_F_DWORD);
  }

  /** Set up an invalidation queue of 2^qs pages with 256-bit (dw) or 128-bit descriptors and enable QI. */
  queue(dw = true, qs = 0): number {
    this.qBytes = PAGE << qs;
    this.qBase = this.alloc.alloc(this.qBytes)!;
    this.qDesc = dw ? 32 : 16;
    this.tail = 0;
    this.w64(R.IQT!, 0);
    this.w64(R.IQA!, VTD_REGS.pack64('IQA', { IQA: this.qBase / PAGE, DW: dw ? 1 : 0, QS: qs }));
    this.gcmd(GCMD_QIE, true);
    return this.qBase;
  }

  /** Write descriptors at the tail and move IQT past them. */
  submit(...descs: Uint32Array[]): void {
    for (const d of descs) {
      for (let i = 0; i < this.qDesc / 4; i++) this.mem.write32(this.qBase + this.tail + 4 * i, d[i] ?? 0);
      this.tail = (this.tail + this.qDesc) % this.qBytes;
    }
    this.w64(R.IQT!, this.tail);
  }

  get iqh(): number {
    return Number(this.r64(R.IQH!));
  }

  /** Build a descriptor from a layout and fields, with its type split into TYPE_LO / TYPE_HI. */
  static desc(layout: Layout, type: number, fields: Record<string, number> = {}): Uint32Array {
    return encodeLayout(layout, { ...descTypeFields(type), ...fields });
  }
}

/** u8 array of `n` bytes counting from `start`. */
export function bytes(n: number, start = 1): number[] {
  return Array.from({ length: n }, (_, i) => (start + i) & 0xff);
}
