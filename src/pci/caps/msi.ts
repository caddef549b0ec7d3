import type { CapabilityList } from '../capability-list.ts';
import type { ConfigSpace } from '../config-space.ts';
import { fieldGet, fieldPrep } from '../../hw/layout.ts';
import { defineRegisters } from '../../hw/registers.ts';
import { lowBits, valueBefore } from './bits.ts';

/** The MSI registers whose place does not depend on the capability's variant. */
export const MSI_REGS = defineRegisters('msi', [
  /**
   * Message Control (PCI 3.0 §6.8.1.3): MMC, Multiple Message Capable, is
   * log2 of the vectors the function asks for; MME, Multiple Message Enable,
   * log2 of the vectors software granted; 64-bit address and per-vector
   * masking capable.
   */
  {
    name: 'FLAGS', offset: 0x02, size: 2,
    fields: [['ENABLE', 0], ['MMC', 3, 1, 'ro'], ['MME', 6, 4], ['ADDR64', 7, 7, 'ro'], ['PVM', 8, 8, 'ro']],
  },
  /** Message Address (§6.8.1.4): bits [1:0] are reserved, messages are dword aligned. */
  { name: 'ADDRESS_LO', offset: 0x04, size: 4, fields: [['ADDR', 31, 2]] },
]);

/**
 * MSI capability (PCI Local Bus 3.0 §6.8.1, PCIe Base 7.7.1). The layout after
 * Message Address depends on two capability bits: 64-bit addressing adds the
 * upper address dword, per-vector masking (PVM) adds Mask and Pending Bits.
 */
export const MSI = {
  CAP_ID: 0x05,
  ...MSI_REGS.offsets(),
  /** Present only with 64-bit addressing. */
  ADDRESS_HI: 0x08,
  DATA_32: 0x08,
  MASK_32: 0x0c,
  PENDING_32: 0x10,
  DATA_64: 0x0c,
  MASK_64: 0x10,
  PENDING_64: 0x14,
} as const;

/** Message Control field masks (from the table). */
export const MSI_FLAGS = MSI_REGS.masks('FLAGS');
const MME = MSI_REGS.field('FLAGS', 'MME');
const TWO_32 = 0x1_0000_0000;

/** What happened to an interrupt a device raised. */
export type DeliveryResult = 'sent' | 'pending' | 'dropped';

export interface MsiOptions {
  /** Vectors the function requests: 1, 2, 4, 8, 16 or 32. */
  vectors: number;
  /** 64-bit Address Capable (default true). */
  addr64?: boolean;
  /** Per-Vector Masking Capable (default false). */
  perVectorMask?: boolean;
  /** Emit a memory write of `data` to `addr` (the device adds its requester ID). */
  send: (addr: number, data: number) => void;
  /** Software changed MSI Enable or Multiple Message Enable. */
  onChange?: (cap: MsiCapability) => void;
}

export class MsiCapability {
  readonly offset: number;
  readonly capableVectors: number;
  readonly is64Bit: boolean;
  readonly perVectorMask: boolean;
  private readonly cfg: ConfigSpace;
  private readonly opts: MsiOptions;
  private readonly log2Capable: number;
  private readonly dataReg: number;
  private readonly maskReg: number;
  private readonly pendingReg: number;

  constructor(cfg: ConfigSpace, list: CapabilityList, options: MsiOptions) {
    const v = options.vectors;
    if (![1, 2, 4, 8, 16, 32].includes(v)) throw new RangeError(`MSI vectors must be a power of two <= 32, got ${v}`);
    this.cfg = cfg;
    this.opts = options;
    this.capableVectors = v;
    this.log2Capable = Math.log2(v);
    this.is64Bit = options.addr64 ?? true;
    this.perVectorMask = options.perVectorMask ?? false;
    this.dataReg = this.is64Bit ? MSI.DATA_64 : MSI.DATA_32;
    this.maskReg = this.is64Bit ? MSI.MASK_64 : MSI.MASK_32;
    this.pendingReg = this.is64Bit ? MSI.PENDING_64 : MSI.PENDING_32;
    const length = this.perVectorMask ? this.pendingReg + 4 : this.dataReg + 2;
    this.offset = list.addStd(MSI.CAP_ID, length);
    this.layout();
    const base = this.offset;
    cfg.onWrite(base + MSI.FLAGS, 2, (off, _n, old) => this.flagsWritten(off, old));
    if (this.perVectorMask) cfg.onWrite(base + this.maskReg, 4, () => this.flushPending());
  }

  private layout(): void {
    const b = this.offset;
    const flags = MSI_REGS.pack('FLAGS', { MMC: this.log2Capable, ADDR64: this.is64Bit ? 1 : 0, PVM: this.perVectorMask ? 1 : 0 });
    this.cfg.set16(b + MSI.FLAGS, flags);
    this.cfg.setWritable(b + MSI.FLAGS, 2, MSI_REGS.writableMask('FLAGS'));
    this.cfg.setWritable(b + MSI.ADDRESS_LO, 4, MSI_REGS.writableMask('ADDRESS_LO'));
    if (this.is64Bit) this.cfg.setWritable(b + MSI.ADDRESS_HI, 4, 0xffffffff);
    // Message Data is 16 bits; Extended Message Data is not implemented (RO 0).
    this.cfg.setWritable(b + this.dataReg, 2, 0xffff);
    if (this.perVectorMask) {
      // Mask bits of vectors the function does not implement are reserved.
      this.cfg.setWritable(b + this.maskReg, 4, lowBits(this.capableVectors));
    }
  }

  /** Back to the reset state (disabled, nothing programmed), e.g. on FLR. */
  reset(): void {
    const b = this.offset;
    this.cfg.set16(b + MSI.FLAGS, this.cfg.get16(b + MSI.FLAGS) & ~(MSI_FLAGS.ENABLE | MSI_FLAGS.MME));
    this.cfg.set32(b + MSI.ADDRESS_LO, 0);
    if (this.is64Bit) this.cfg.set32(b + MSI.ADDRESS_HI, 0);
    this.cfg.set16(b + this.dataReg, 0);
    if (this.perVectorMask) {
      this.cfg.set32(b + this.maskReg, 0);
      this.cfg.set32(b + this.pendingReg, 0);
    }
  }

  get enabled(): boolean {
    return (this.flags & MSI_FLAGS.ENABLE) !== 0;
  }

  /** Vectors software granted (2^MME). */
  get allocatedVectors(): number {
    return 2 ** fieldGet(MME, this.flags);
  }

  /** Message Address as a number (an upper dword beyond 2^21 loses precision). */
  get address(): number {
    const lo = this.cfg.get32(this.offset + MSI.ADDRESS_LO);
    const hi = this.is64Bit ? this.cfg.get32(this.offset + MSI.ADDRESS_HI) : 0;
    return hi * TWO_32 + lo;
  }

  get data(): number {
    return this.cfg.get16(this.offset + this.dataReg);
  }

  masked(vector: number): boolean {
    return this.perVectorMask && this.bit(this.maskReg, vector);
  }

  pending(vector: number): boolean {
    return this.perVectorMask && this.bit(this.pendingReg, vector);
  }

  /**
   * The device raises interrupt `vector`. Dropped when MSI is disabled or the
   * vector was not granted; held in Pending Bits while masked; sent otherwise.
   */
  notify(vector: number): DeliveryResult {
    if (!this.enabled || !Number.isInteger(vector) || vector < 0 || vector >= this.allocatedVectors) {
      return 'dropped';
    }
    if (this.masked(vector)) {
      this.setBit(this.pendingReg, vector, true);
      return 'pending';
    }
    this.deliver(vector);
    return 'sent';
  }

  /** The device withdraws a pending interrupt (its cause went away). */
  clearPending(vector: number): void {
    if (this.perVectorMask && vector >= 0 && vector < 32) this.setBit(this.pendingReg, vector, false);
  }

  private get flags(): number {
    return this.cfg.get16(this.offset + MSI.FLAGS);
  }

  private deliver(vector: number): void {
    // The function puts the vector number in the low log2(granted) data bits.
    const low = this.allocatedVectors - 1;
    const data = ((this.data & ~low) | (vector & low)) & 0xffff;
    this.opts.send(this.address, data);
  }

  private flagsWritten(off: number, old: Uint8Array): void {
    const reg = this.offset + MSI.FLAGS;
    const before = valueBefore(this.cfg, reg, 2, off, old);
    // Granting more vectors than requested is undefined; like QEMU, grant the maximum.
    if (fieldGet(MME, this.flags) > this.log2Capable) {
      this.cfg.set16(reg, (this.flags & ~MSI_FLAGS.MME) | fieldPrep(MME, this.log2Capable));
    }
    const mask = MSI_FLAGS.ENABLE | MSI_FLAGS.MME;
    if ((before & mask) !== (this.flags & mask)) this.opts.onChange?.(this);
    this.flushPending();
  }

  /** Send every pending vector that is no longer masked (PCI 3.0 §6.8.1.7). */
  private flushPending(): void {
    if (!this.perVectorMask || !this.enabled) return;
    for (let v = 0; v < this.allocatedVectors; v++) {
      if (this.pending(v) && !this.masked(v)) {
        this.setBit(this.pendingReg, v, false);
        this.deliver(v);
      }
    }
  }

  private bit(reg: number, vector: number): boolean {
    if (vector < 0 || vector >= 32) return false;
    return ((this.cfg.get32(this.offset + reg) >>> vector) & 1) === 1;
  }

  private setBit(reg: number, vector: number, on: boolean): void {
    const off = this.offset + reg;
    const v = this.cfg.get32(off);
    const bit = 2 ** vector;
    this.cfg.set32(off, on ? (v | bit) >>> 0 : (v & ~bit) >>> 0);
  }
}
