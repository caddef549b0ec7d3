/**
 * A small "driver" for the SMMUv3 model tests: a virt board with the SMMU at
 * its IOMMU base, a bus-mastering test endpoint, table memory from a bump
 * allocator, and helpers that program the SMMU only through MMIO and guest
 * memory, the way a real driver must.
 */
import { Board } from '../../../machines/board.ts';
import { encodeLayout } from '../../../src/hw/layout.ts';
import { CFG, COMMAND } from '../../../src/pci/header.ts';
import type { DmaAttrs, DmaResult } from '../../../src/pci/transaction.ts';
import { createVmsaBuilder, type TablePageAllocator, type VmsaBuilder, type VmsaBuilderConfig } from '../../../iommu/pgtable/index.ts';
import {
  CD_LAYOUT,
  CR0,
  CR2,
  L1STD_LAYOUT,
  Q_OVF,
  SMMU_REG,
  SMMU_REGS,
  STE_LAYOUT,
  Smmuv3,
  decodeEvent,
  decodePriRecord,
  encodeCommand,
  type CmdName,
  type CmdValues,
  type Smmuv3Options,
} from '../../../iommu/smmuv3/index.ts';
import { AtsTestEndpoint } from './endpoint.ts';

export const MiB = 2 ** 20;
/** Where tests put DMA data (guest RAM starts at 1 GiB on virt). */
export const DATA = 0x4000_0000;
/** Table memory for the allocator. */
const TABLES = 0x5000_0000;
export const CMDQ = 0x4800_0000;
export const EVTQ = 0x4810_0000;
export const PRIQ = 0x4820_0000;
export const STRTAB = 0x4840_0000; // a 2^16-entry linear table is 4 MiB and aligned to its size
/** TG0/S2TG encodings. */
export const TG = { 4096: 0, 65536: 1, 16384: 2 } as const;

export class BumpAlloc implements TablePageAllocator {
  constructor(private readonly board: Board, private next: number) {}
  alloc(bytes: number): number {
    const pa = Math.ceil(this.next / bytes) * bytes;
    this.next = pa + bytes;
    this.board.sysmem.writeFrom(pa, new Uint8Array(bytes));
    return pa;
  }
  free(): void {}
}

export interface EnableOptions {
  /** Stream table: linear (default) or 2-level with SPLIT. */
  fmt?: 'linear' | '2lvl';
  log2size?: number;
  split?: number;
  evtqLog2?: number;
  cmdqLog2?: number;
  recinvsid?: boolean;
}

export class Harness {
  readonly board: Board;
  readonly smmu: Smmuv3;
  readonly dev: AtsTestEndpoint;
  readonly base: number;
  readonly alloc: BumpAlloc;
  readonly irqs: string[] = [];
  cmdqLog2 = 8;
  evtqLog2 = 8;

  constructor(opts: Smmuv3Options = {}) {
    this.board = new Board('virt-smmuv3');
    this.smmu = new Smmuv3(this.board, this.board.sysmem, { irq: (l) => this.irqs.push(l), ...opts });
    this.base = this.board.layout.iommuBase;
    this.board.sysmemRoot.addSubregion(this.base, this.smmu.region, 1);
    this.board.rc.remapper = this.smmu;
    this.dev = new AtsTestEndpoint(this.board, 'ep');
    this.board.rc.plug(this.dev, 1);
    this.dev.config.write(CFG.COMMAND, 2, COMMAND.MASTER);
    this.alloc = new BumpAlloc(this.board, TABLES);
  }

  /** The endpoint's StreamID (requester ID 00:01.0). */
  get sid(): number {
    return this.dev.requesterId;
  }

  r32(reg: keyof typeof SMMU_REG | number): number {
    return this.board.sysmem.read32(this.base + (typeof reg === 'number' ? reg : SMMU_REG[reg]));
  }
  w32(reg: keyof typeof SMMU_REG | number, v: number): void {
    this.board.sysmem.write32(this.base + (typeof reg === 'number' ? reg : SMMU_REG[reg]), v >>> 0);
  }
  w64(reg: keyof typeof SMMU_REG, v: number | bigint): void {
    this.board.sysmem.write64(this.base + SMMU_REG[reg], BigInt(v));
  }

  /** Program queues and the Stream table, enable the queues, invalidate everything, then SMMUEN. */
  enable(o: EnableOptions = {}): void {
    this.cmdqLog2 = o.cmdqLog2 ?? 8;
    this.evtqLog2 = o.evtqLog2 ?? 8;
    this.w64('CMDQ_BASE', SMMU_REGS.pack64('CMDQ_BASE', { ADDR: CMDQ / 32, LOG2SIZE: this.cmdqLog2 }));
    this.w32('CMDQ_PROD', 0);
    this.w32('CMDQ_CONS', 0);
    this.w64('EVENTQ_BASE', SMMU_REGS.pack64('EVENTQ_BASE', { ADDR: EVTQ / 32, LOG2SIZE: this.evtqLog2 }));
    this.w32('EVENTQ_PROD', 0);
    this.w32('EVENTQ_CONS', 0);
    this.w64('STRTAB_BASE', SMMU_REGS.pack64('STRTAB_BASE', { ADDR: STRTAB / 64 }));
    const fmt = o.fmt === '2lvl' ? 1 : 0;
    this.w32('STRTAB_BASE_CFG', SMMU_REGS.pack('STRTAB_BASE_CFG', { FMT: fmt, SPLIT: o.split ?? 8, LOG2SIZE: o.log2size ?? 16 }));
    this.w32('CR2', o.recinvsid === false ? 0 : CR2.RECINVSID);
    this.w32('CR0', CR0.CMDQEN | CR0.EVENTQEN);
    this.cmd('CFGI_STE_RANGE', { Range: 31 });
    this.cmd('TLBI_NSNH_ALL');
    this.cmd('SYNC');
    this.w32('CR0', CR0.CMDQEN | CR0.EVENTQEN | CR0.SMMUEN);
  }

  /** Address of the STE for `sid` in a linear Stream table. */
  steAddr(sid: number): number {
    return STRTAB + sid * 64;
  }

  writeWords(addr: number, words: Uint32Array): void {
    for (let i = 0; i < words.length; i++) this.board.sysmem.write32(addr + 4 * i, words[i]!);
  }

  /** Write an STE (fields by name) at `addr` (default: linear table slot of `sid`). */
  writeSte(sid: number, fields: Record<string, number>, addr = this.steAddr(sid)): void {
    this.writeWords(addr, encodeLayout(STE_LAYOUT, { V: 1, ...fields }));
  }

  writeCd(addr: number, fields: Record<string, number>): void {
    this.writeWords(addr, encodeLayout(CD_LAYOUT, { V: 1, AA64: 1, R: 1, A: 1, EPD1: 1, IPS: 5, ...fields }));
  }

  writeL1std(index: number, span: number, l2ptr: number): void {
    this.writeWords(STRTAB + index * 8, encodeLayout(L1STD_LAYOUT, { Span: span, L2Ptr: l2ptr / 64 }));
  }

  /** Put a command in the queue and publish PROD (the SMMU consumes it at once). */
  cmd<N extends CmdName>(op: N, fields: CmdValues<N> = {}): void {
    this.put(encodeCommand(op, fields));
  }

  put(words: Uint32Array): void {
    const prod = this.r32('CMDQ_PROD');
    const idx = prod % 2 ** this.cmdqLog2;
    this.writeWords(CMDQ + idx * 16, words);
    this.w32('CMDQ_PROD', (prod + 1) % 2 ** (this.cmdqLog2 + 1));
  }

  /** Event records between CONS and PROD, decoded; CONS is advanced past them. */
  events(): Record<string, number>[] {
    const out: Record<string, number>[] = [];
    const n = 2 ** this.evtqLog2;
    const mask = 2 * n - 1;
    let cons = this.r32('EVENTQ_CONS') & mask;
    const prod = this.r32('EVENTQ_PROD') & mask;
    for (let guard = 0; cons !== prod && guard < n; guard++) {
      const words = new Uint32Array(8);
      for (let i = 0; i < 8; i++) words[i] = this.board.sysmem.read32(EVTQ + (cons % n) * 32 + 4 * i);
      out.push(decodeEvent(words));
      cons = (cons + 1) & mask;
    }
    this.w32('EVENTQ_CONS', (this.r32('EVENTQ_CONS') & Q_OVF) | cons);
    return out;
  }

  priqLog2 = 4;

  /** Program the PRI queue (2^log2 records) and set CR0.PRIQEN. */
  enablePriq(log2 = 4): void {
    this.priqLog2 = log2;
    this.w64('PRIQ_BASE', SMMU_REGS.pack64('PRIQ_BASE', { ADDR: PRIQ / 32, LOG2SIZE: log2 }));
    this.w32('PRIQ_PROD', 0);
    this.w32('PRIQ_CONS', 0);
    this.w32('CR0', this.r32('CR0') | CR0.PRIQEN);
  }

  /** PRI queue records between CONS and PROD, decoded; CONS is advanced past them (OVACKFLG kept). */
  priRecords(): Record<string, number>[] {
    const out: Record<string, number>[] = [];
    const n = 2 ** this.priqLog2;
    const mask = 2 * n - 1;
    let cons = this.r32('PRIQ_CONS') & mask;
    const prod = this.r32('PRIQ_PROD') & mask;
    for (let guard = 0; cons !== prod && guard < n; guard++) {
      const words = new Uint32Array(4);
      for (let i = 0; i < 4; i++) words[i] = this.board.sysmem.read32(PRIQ + (cons % n) * 16 + 4 * i);
      out.push(decodePriRecord(words));
      cons = (cons + 1) & mask;
    }
    this.w32('PRIQ_CONS', (this.r32('PRIQ_CONS') & Q_OVF) | cons);
    return out;
  }

  /** Let `ns` of virtual time pass (running what is due). */
  run(ns: number): void {
    this.board.scheduler.runUntil(this.board.now() + ns);
  }

  /** CMDQ_CONS.RD and .ERR. */
  cons(): { rd: number; err: number } {
    const v = this.r32('CMDQ_CONS');
    return { rd: SMMU_REGS.get('CMDQ_CONS', v, 'RD'), err: SMMU_REGS.get('CMDQ_CONS', v, 'ERR') };
  }

  eventNames(): number[] {
    return this.events().map((e) => e.EventType);
  }

  /** A stage 1 or 2 table built as Linux io-pgtable would (in guest memory). */
  table(cfg: Partial<VmsaBuilderConfig> & { stage: 1 | 2 }): VmsaBuilder {
    const b = createVmsaBuilder(this.board.sysmem, this.alloc, { granule: 4096, iaBits: 48, oaBits: 48, nonGlobal: cfg.stage === 1, ...cfg });
    if (typeof b === 'number') throw new Error(`builder: ${b}`);
    return b;
  }

  /** CD fields for a stage 1 table. */
  cdFor(b: VmsaBuilder, asid: number, extra: Record<string, number> = {}): Record<string, number> {
    return { T0SZ: b.tsz, TG0: TG[b.cfg.granule], TTB0: b.root / 16, ASID: asid, ...extra };
  }

  /** STE fields for stage 2 with table `b`. */
  s2For(b: VmsaBuilder, vmid: number, extra: Record<string, number> = {}): Record<string, number> {
    return {
      S2VMID: vmid, S2T0SZ: b.tsz, S2SL0: b.sl0, S2TG: TG[b.cfg.granule], S2PS: 5, S2AA64: 1, S2R: 1, S2TTB: b.root / 16, ...extra,
    };
  }

  /** Guest-physical address of the leaf descriptor translating `va` in table `b` (no nesting). */
  leafPte(b: VmsaBuilder, va: number): number {
    const g = b.cfg.granule;
    const ps = Math.log2(g);
    const stride = ps - 3;
    let table = b.root;
    for (let level = b.startLevel; level <= 3; level++) {
      const shift = ps + (3 - level) * stride;
      const entries = level === b.startLevel ? b.rootBytes / 8 : 2 ** stride;
      const addr = table + (Math.floor(va / 2 ** shift) % entries) * 8;
      const lo = this.board.sysmem.read32(addr);
      if (level === 3 || (lo & 2) === 0) return addr;
      table = ((lo & ~(g - 1)) >>> 0) + (this.board.sysmem.read32(addr + 4) & 0xffff) * 2 ** 32;
    }
    return -1;
  }

  /** Set and clear bits of a descriptor's low word. */
  poke(addr: number, set: number, clear = 0): number {
    const v = ((this.board.sysmem.read32(addr) | set) & ~clear) >>> 0;
    this.board.sysmem.write32(addr, v);
    return v;
  }

  read(addr: number, len = 4, attrs?: DmaAttrs): DmaResult {
    return this.dev.dmaRead(BigInt(addr), len, attrs);
  }

  write(addr: number, data: number | Uint8Array, attrs?: DmaAttrs): DmaResult {
    const bytes = typeof data === 'number' ? new Uint8Array(new Uint32Array([data]).buffer) : data;
    return this.dev.dmaWrite(BigInt(addr), bytes, attrs);
  }

  /** The 32-bit value a DMA read returns, or the fault name. */
  read32(addr: number, attrs?: DmaAttrs): number | string {
    const r = this.read(addr, 4, attrs);
    if (!r.ok) return r.fault;
    const d = r.data!;
    return (d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24)) >>> 0;
  }

  counter(name: string): number {
    return this.board.counters.get(`smmuv3.${name}`);
  }
}
