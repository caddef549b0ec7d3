import { type AccessSize, MemoryRegion, type MmioOps } from '../../memory/memory-region.ts';
import type { Tracer } from '../../trace/tracer.ts';
import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';
import { defineLayout } from '../../hw/layout.ts';
import { defineRegisters } from '../../hw/registers.ts';
import { valueBefore } from './bits.ts';
import type { DeliveryResult } from './msi.ts';

/**
 * MSI-X capability (PCIe Base 7.7.2). The capability in config space only
 * says where the vector table and the Pending Bit Array live (BAR index and
 * offset); the table and PBA themselves are MMIO served by `tableOps` and
 * `pbaOps` (or the ready `tableRegion` / `pbaRegion`), which the device
 * places in its BARs at the offsets it declared.
 */
export const MSIX_REGS = defineRegisters('msix', [
  /** Message Control (PCIe Base 7.7.2.2): Table Size is encoded as N-1. */
  { name: 'FLAGS', offset: 0x02, size: 2, fields: [['QSIZE', 10, 0, 'ro'], ['FUNCTION_MASK', 14], ['ENABLE', 15]] },
  /** Table Offset/Table BIR and PBA Offset/PBA BIR (7.7.2.3, 7.7.2.4): the offset is QWORD aligned (bits 31:3). */
  { name: 'TABLE', offset: 0x04, size: 4, access: 'ro', fields: [['BIR', 2, 0], ['OFFSET', 31, 3]] },
  { name: 'PBA', offset: 0x08, size: 4, access: 'ro', fields: [['BIR', 2, 0], ['OFFSET', 31, 3]] },
]);

export const MSIX = {
  CAP_ID: 0x11,
  ...MSIX_REGS.offsets(),
  SIZEOF: 12,
  MAX_VECTORS: 2048,
} as const;

/** Message Control field masks (from the table). */
export const MSIX_FLAGS = MSIX_REGS.masks('FLAGS');
/** Table / PBA Offset and BIR masks (from the table). */
export const MSIX_BIR = MSIX_REGS.masks('TABLE');

/**
 * One vector table entry (PCIe Base 7.7.2.5 - 7.7.2.8): Message Address
 * (bits [1:0] reserved: messages are dword aligned), Message Upper Address,
 * Message Data, and Vector Control, of which only the Mask bit is defined.
 */
export const MSIX_ENTRY_LAYOUT = defineLayout('MSIX_ENTRY', 16, [
  ['MSG_ADDR', 31, 2], ['MSG_UPPER_ADDR', 63, 32], ['MSG_DATA', 95, 64], ['MASKED', 96],
]);

/** One vector table entry: its size, dword offsets and the Mask bit in Vector Control. */
export const MSIX_ENTRY = {
  SIZE: MSIX_ENTRY_LAYOUT.bytes,
  ADDR_LO: 0x0,
  ADDR_HI: 0x4,
  DATA: 0x8,
  VECTOR_CTRL: 0xc,
  CTRL_MASKBIT: MSIX_ENTRY_LAYOUT.fields.MASKED.mask,
} as const;

/** Writable bits of each byte of an entry: those in a field (reserved bits read 0 and ignore writes). */
const ENTRY_WMASK = Array.from({ length: MSIX_ENTRY.SIZE }, (_, i) => (~MSIX_ENTRY_LAYOUT.reservedMask[i >> 2]! >>> (8 * (i & 3))) & 0xff);
const TWO_32 = 0x1_0000_0000;

export interface MsixOptions {
  /** Table Size in vectors, 1 to 2048. */
  vectors: number;
  /** BAR holding the table, and the table's offset in it (QWORD aligned). */
  tableBar: number;
  tableOffset: number;
  /** BAR holding the PBA (default: the table's), and its offset (QWORD aligned). */
  pbaBar?: number;
  pbaOffset: number;
  /** Emit a memory write of `data` to `addr` (the device adds its requester ID). */
  send: (addr: number, data: number) => void;
  /** Optional trace bus for 'msix.pending'; `bdf` names the function in it. */
  tracer?: Tracer;
  bdf?: string;
  /** Software changed MSI-X Enable or Function Mask. */
  onChange?: (cap: MsixCapability) => void;
}

export interface MsixEntry {
  address: number;
  data: number;
  masked: boolean;
}

export class MsixCapability {
  readonly offset: number;
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
  /** Bytes the table (16 per vector) and the PBA (8 per 64 vectors) occupy in their BARs. */
  readonly tableSize: number;
  readonly pbaSize: number;
  /**
   * Table MMIO. DWORD accesses are the rule (QWORDs arrive split in two);
   * byte and word accesses, which the spec leaves undefined, update just the
   * bytes they cover, as byte enables would. Accesses beyond the table read 0
   * and are dropped.
   */
  readonly tableOps: MmioOps;
  /** PBA MMIO: read-only pending bits, 64 per QWORD; writes are ignored. */
  readonly pbaOps: MmioOps;
  readonly tableRegion: MemoryRegion;
  readonly pbaRegion: MemoryRegion;
  private readonly cfg: ConfigSpace;
  private readonly opts: MsixOptions;
  private readonly table: Uint8Array;
  private readonly pba: Uint8Array;

  constructor(cfg: ConfigSpace, list: CapabilityList, options: MsixOptions) {
    const n = options.vectors;
    if (!Number.isInteger(n) || n < 1 || n > MSIX.MAX_VECTORS) throw new RangeError(`MSI-X vectors must be 1..2048, got ${n}`);
    this.cfg = cfg;
    this.opts = options;
    this.vectors = n;
    this.tableBar = checkBir(options.tableBar);
    this.pbaBar = checkBir(options.pbaBar ?? options.tableBar);
    this.tableOffset = checkOffset(options.tableOffset, 'table');
    this.pbaOffset = checkOffset(options.pbaOffset, 'PBA');
    this.tableSize = n * MSIX_ENTRY.SIZE;
    this.pbaSize = Math.ceil(n / 64) * 8;
    if (
      this.tableBar === this.pbaBar &&
      this.tableOffset < this.pbaOffset + this.pbaSize &&
      this.pbaOffset < this.tableOffset + this.tableSize
    ) {
      throw new RangeError('MSI-X table and PBA overlap');
    }
    this.table = new Uint8Array(this.tableSize);
    this.pba = new Uint8Array(this.pbaSize);
    this.offset = list.addStd(MSIX.CAP_ID, MSIX.SIZEOF);
    const b = this.offset;
    cfg.set16(b + MSIX.FLAGS, MSIX_REGS.pack('FLAGS', { QSIZE: n - 1 }));
    cfg.setWritable(b + MSIX.FLAGS, 2, MSIX_REGS.writableMask('FLAGS'));
    cfg.set32(b + MSIX.TABLE, MSIX_REGS.pack('TABLE', { OFFSET: this.tableOffset / 8, BIR: this.tableBar }));
    cfg.set32(b + MSIX.PBA, MSIX_REGS.pack('PBA', { OFFSET: this.pbaOffset / 8, BIR: this.pbaBar }));
    cfg.onWrite(b + MSIX.FLAGS, 2, (off, _n, old) => this.flagsWritten(off, old));
    this.tableOps = {
      read: (offset, size) => readBytes(this.table, offset, size),
      write: (offset, size, value) => this.tableWrite(offset, size, value),
    };
    this.pbaOps = { read: (offset, size) => readBytes(this.pba, offset, size), write: () => {} };
    const name = options.bdf ?? 'msix';
    this.tableRegion = MemoryRegion.mmio(`${name} msix-table`, this.tableSize, this.tableOps);
    this.pbaRegion = MemoryRegion.mmio(`${name} msix-pba`, this.pbaSize, this.pbaOps);
    this.reset();
  }

  /** Reset state: disabled, function unmasked, every vector masked, nothing pending. */
  reset(): void {
    const reg = this.offset + MSIX.FLAGS;
    this.cfg.set16(reg, this.cfg.get16(reg) & ~(MSIX_FLAGS.ENABLE | MSIX_FLAGS.FUNCTION_MASK));
    this.table.fill(0);
    for (let v = 0; v < this.vectors; v++) this.table[v * MSIX_ENTRY.SIZE + MSIX_ENTRY.VECTOR_CTRL] = MSIX_ENTRY.CTRL_MASKBIT;
    this.pba.fill(0);
  }

  get enabled(): boolean {
    return (this.flags & MSIX_FLAGS.ENABLE) !== 0;
  }

  get functionMasked(): boolean {
    return (this.flags & MSIX_FLAGS.FUNCTION_MASK) !== 0;
  }

  /** Entry `vector` as programmed (the address loses precision beyond 2^53). */
  entry(vector: number): MsixEntry {
    const e = this.entryBase(vector);
    if (e === undefined) return { address: 0, data: 0, masked: true };
    return {
      address: this.dword(e + MSIX_ENTRY.ADDR_HI) * TWO_32 + this.dword(e + MSIX_ENTRY.ADDR_LO),
      data: this.dword(e + MSIX_ENTRY.DATA),
      masked: (this.table[e + MSIX_ENTRY.VECTOR_CTRL]! & MSIX_ENTRY.CTRL_MASKBIT) !== 0,
    };
  }

  masked(vector: number): boolean {
    return this.entry(vector).masked;
  }

  pending(vector: number): boolean {
    if (this.entryBase(vector) === undefined) return false;
    return ((this.pba[vector >>> 3]! >>> (vector & 7)) & 1) === 1;
  }

  /**
   * The device raises interrupt `vector`: sent when MSI-X is enabled and
   * neither the function nor the vector is masked, otherwise remembered in
   * the PBA until unmasking (or enabling) releases it.
   */
  notify(vector: number): DeliveryResult {
    if (this.entryBase(vector) === undefined) return 'dropped';
    if (this.canSend(vector)) {
      this.deliver(vector);
      return 'sent';
    }
    this.setPending(vector, true);
    this.opts.tracer?.trace('msix.pending', this.opts.bdf ?? 'msix', { bdf: this.opts.bdf ?? '', vector });
    return 'pending';
  }

  /** The device withdraws a pending interrupt (its cause went away). */
  clearPending(vector: number): void {
    if (this.entryBase(vector) !== undefined) this.setPending(vector, false);
  }

  private get flags(): number {
    return this.cfg.get16(this.offset + MSIX.FLAGS);
  }

  private entryBase(vector: number): number | undefined {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.vectors) return undefined;
    return vector * MSIX_ENTRY.SIZE;
  }

  private dword(off: number): number {
    return readBytes(this.table, off, 4);
  }

  private canSend(vector: number): boolean {
    return this.enabled && !this.functionMasked && !this.masked(vector);
  }

  private deliver(vector: number): void {
    const e = this.entry(vector);
    this.opts.send(e.address, e.data);
  }

  private setPending(vector: number, on: boolean): void {
    const bit = 1 << (vector & 7);
    const i = vector >>> 3;
    this.pba[i] = on ? this.pba[i]! | bit : this.pba[i]! & ~bit;
  }

  /** Release a pending vector if nothing masks it any more. */
  private release(vector: number): void {
    if (this.pending(vector) && this.canSend(vector)) {
      this.setPending(vector, false);
      this.deliver(vector);
    }
  }

  private flagsWritten(off: number, old: Uint8Array): void {
    const before = valueBefore(this.cfg, this.offset + MSIX.FLAGS, 2, off, old);
    const mask = MSIX_FLAGS.ENABLE | MSIX_FLAGS.FUNCTION_MASK;
    if ((before & mask) === (this.flags & mask)) return;
    this.opts.onChange?.(this);
    if (!this.enabled || this.functionMasked) return;
    // Enabling or clearing Function Mask releases whatever piled up (skip empty PBA bytes).
    for (let i = 0; i < this.pba.length; i++) {
      if (this.pba[i] === 0) continue;
      for (let v = i * 8; v < Math.min(i * 8 + 8, this.vectors); v++) this.release(v);
    }
  }

  private tableWrite(offset: number, size: AccessSize, value: number): void {
    let touchedCtrl: number | undefined;
    for (let i = 0; i < Math.min(size, 4); i++) {
      const o = offset + i;
      if (!Number.isInteger(o) || o < 0 || o >= this.table.length) continue;
      const m = ENTRY_WMASK[o % MSIX_ENTRY.SIZE]!;
      const b = (value >>> (8 * i)) & 0xff;
      this.table[o] = (this.table[o]! & ~m) | (b & m);
      if (o % MSIX_ENTRY.SIZE === MSIX_ENTRY.VECTOR_CTRL) touchedCtrl = Math.floor(o / MSIX_ENTRY.SIZE);
    }
    // Clearing a vector's Mask bit delivers its pending message (PCIe Base 6.1.4.5).
    if (touchedCtrl !== undefined) this.release(touchedCtrl);
  }
}

function readBytes(arr: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = 0; i < Math.min(size, 4); i++) {
    const o = offset + i;
    if (Number.isInteger(o) && o >= 0 && o < arr.length) v |= arr[o]! << (8 * i);
  }
  return v >>> 0;
}

function checkBir(bir: number): number {
  if (!Number.isInteger(bir) || bir < 0 || bir > 5) throw new RangeError(`MSI-X BIR must be 0..5, got ${bir}`);
  return bir;
}

function checkOffset(off: number, what: string): number {
  if (!Number.isInteger(off) || off < 0 || off > MSIX_BIR.OFFSET || off % 8 !== 0) {
    throw new RangeError(`MSI-X ${what} offset must be QWORD aligned, got ${off}`);
  }
  return off;
}
