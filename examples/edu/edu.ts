/**
 * QEMU's `edu` teaching device, written from its published specification
 * (QEMU docs/specs/edu.rst) with ioemu's public entry only: identification,
 * a liveness check, a factorial unit with an interrupt, and a DMA engine that
 * moves up to 4 KiB between host memory and a buffer inside the device, all
 * through BAR0 (1 MiB). Interrupts are MSI (one vector, 64-bit) when the
 * driver enables it, INTx pin A otherwise.
 *
 * Identity as QEMU gives it: vendor 0x1234 (PCI_VENDOR_ID_QEMU), device
 * 0x11e8, revision 0x10, class code 0x00ff00 (QEMU's class_id PCI_CLASS_OTHERS, 0xff,
 * in the base class/subclass half-word: base class 0x00, subclass 0xff), subsystem
 * 0x1af4:0x1100 (QEMU's default subsystem IDs), a conventional PCI function
 * (no PCIe capability, 256 bytes of configuration space).
 *
 * Timing in virtual time: a DMA runs `dmaDelayNs` after the command (QEMU
 * arms a 100 ms virtual-clock timer); a factorial completes `factorialNs`
 * after its input is written (QEMU computes it on a thread; the spec only
 * says software must poll the status or wait for the interrupt).
 *
 * Register accesses are QEMU 7.2's (edu_mmio_read/edu_mmio_write): 4 bytes
 * below 0x80; 4 or 8 bytes at the DMA registers, where a 4-byte read gives
 * the low half, a 4-byte write sets the whole register (upper half 0), and
 * +4 is not a register (all ones, writes ignored); an 8-byte access below
 * 0x80 reads all ones and writes nothing. Where this model differs from
 * QEMU's (on purpose, see README.md): a transfer outside the device buffer
 * is refused and reported (QEMU 7.2 aborts the VM, later QEMU logs and
 * copies anyway).
 */
import {
  IntxPin,
  MemoryRegion,
  MsiCapability,
  PciFunction,
  type InjectionPoint,
  type MmioOps,
  type ScheduledEvent,
  type SimContext,
  type TraceChannel,
} from '../../src/index.ts';

/** BAR0 register offsets (docs/specs/edu.rst "MMIO area spec"). */
export const EDU_REGS = {
  /** RO identification 0xRRrr00ed: major RR, minor rr. */
  ID: 0x00,
  /** RW liveness: reads back the bitwise inverse of what was written. */
  LIVENESS: 0x04,
  /** RW factorial: write n, read n! once STATUS.COMPUTING clears. */
  FACTORIAL: 0x08,
  /** RW status: COMPUTING (RO) and IRQ_FACT. */
  STATUS: 0x20,
  /** RO interrupt status: the values that raised the interrupt. */
  IRQ_STATUS: 0x24,
  /** WO interrupt raise: ORed into IRQ_STATUS. */
  IRQ_RAISE: 0x60,
  /** WO interrupt acknowledge: cleared from IRQ_STATUS. */
  IRQ_ACK: 0x64,
  DMA_SRC: 0x80,
  DMA_DST: 0x88,
  DMA_COUNT: 0x90,
  DMA_CMD: 0x98,
} as const;

export const EDU_ID = 0x010000ed;
export const EDU_STATUS = { COMPUTING: 0x01, IRQ_FACT: 0x80 } as const;
export const EDU_DMA_CMD = { START: 0x01, TO_RAM: 0x02, IRQ: 0x04 } as const;
/** IRQ_STATUS values the device raises itself. */
export const EDU_IRQ = { FACTORIAL: 0x001, DMA: 0x100 } as const;
/** The device's DMA buffer as the DMA addresses name it: 4 KiB at 0x40000. */
export const EDU_BUFFER = { BASE: 0x40000, SIZE: 4096 } as const;
/** classCode 0x00ff00: QEMU sets class_id = PCI_CLASS_OTHERS (0xff) in the 16-bit base class/subclass field, so the base class reads 0x00 and the subclass 0xff. */
export const EDU_IDENTITY = { vendorId: 0x1234, deviceId: 0x11e8, revision: 0x10, classCode: 0x00ff00, subsystemVendorId: 0x1af4, subsystemId: 0x1100 } as const;
export const EDU_BAR_SIZE = 1 << 20;

export interface EduOptions {
  /** DMA addresses are masked to this many bits (QEMU's dma_mask property; default 28). */
  dmaBits?: number;
  /** Virtual ns from the DMA command to the transfer (default 100 ms, QEMU's timer). */
  dmaDelayNs?: number;
  /** Virtual ns a factorial takes (default 1 us). */
  factorialNs?: number;
}

/** The device's own injection points: defined on the machine's injector when an edu is built. */
export const EDU_INJECTION_POINTS = {
  'edu.dma': {
    description: 'the edu DMA transfer: fail (nothing moves; the command completes as if the bus refused every access), delay (ns added before the transfer)',
    actions: ['fail', 'delay'],
  },
  'edu.irq': {
    description: 'an edu interrupt (MSI message or INTx assertion): drop (IRQ_STATUS is set but no interrupt reaches the host)',
    actions: ['drop'],
  },
} as const;

/** The device's own trace events and the shape of their arguments. */
export interface EduTraceEvents {
  /** A DMA transfer ended: direction, addresses as the device used them, and its outcome. */
  'edu.dma': { dev: string; dir: 'to-device' | 'to-ram'; ram: string; buffer: number; count: number; outcome: string };
  /** A factorial finished. */
  'edu.factorial': { dev: string; n: number; result: number };
  /** The device raised its interrupt (MSI when enabled, else INTx) with IRQ_STATUS now `status`. */
  'edu.irq': { dev: string; status: number; via: 'msi' | 'intx' | 'dropped' };
}

export const EDU_TRACE_EVENTS = {
  'edu.dma': 'an edu DMA transfer ended (direction, host address, buffer offset, count, outcome)',
  'edu.factorial': 'an edu factorial finished',
  'edu.irq': 'the edu device raised its interrupt',
} as const;

const hex = (v: bigint) => `0x${v.toString(16)}`;
const ALL_ONES = 0xffff_ffff_ffff_ffffn;
const PAGE = 4096;
const PAGE_MASK = 0xfffn;

export class EduDevice extends PciFunction {
  /** The INTx pin (vfio-pci's INTx path finds it as `intx`). */
  readonly intx: IntxPin;
  readonly msi: MsiCapability;
  readonly buffer = new Uint8Array(EDU_BUFFER.SIZE);
  private readonly ctx: SimContext;
  private readonly trace: TraceChannel<EduTraceEvents>;
  private readonly points: { readonly dma: InjectionPoint; readonly irq: InjectionPoint };
  private readonly dmaMask: bigint;
  private readonly dmaDelayNs: number;
  private readonly factorialNs: number;

  private liveness = 0;
  private factorial = 0;
  private status = 0;
  private irqStatus = 0;
  private dmaSrc = 0n;
  private dmaDst = 0n;
  private dmaCount = 0n;
  private dmaCmd = 0n;
  /** The pending factorial and DMA completions (a reset cancels them). */
  private pending = new Set<ScheduledEvent>();

  constructor(ctx: SimContext, name: string, opts: EduOptions = {}) {
    super(name, EDU_IDENTITY, 0);
    this.ctx = ctx;
    this.dmaMask = (1n << BigInt(opts.dmaBits ?? 28)) - 1n;
    this.dmaDelayNs = opts.dmaDelayNs ?? 100_000_000;
    this.factorialNs = opts.factorialNs ?? 1_000;
    const pts = ctx.faults.define(EDU_INJECTION_POINTS);
    this.points = { dma: pts['edu.dma'], irq: pts['edu.irq'] };
    this.trace = ctx.tracer.define<EduTraceEvents>(EDU_TRACE_EVENTS);
    this.intx = new IntxPin(this, 1);
    this.msi = new MsiCapability(this.config, this.caps, { vectors: 1, addr64: true, perVectorMask: false, send: (addr, data) => this.sendMsi(addr, data) });
    const ops: MmioOps = {
      read: (off, size) => this.read(off, size),
      write: (off, size, value) => this.write(off, size, value),
      read64: (off) => this.read64(off),
      write64: (off, value) => this.write64(off, value),
    };
    this.defineBar(0, { kind: 'mem32', size: EDU_BAR_SIZE, region: MemoryRegion.mmio(`${name}-mmio`, EDU_BAR_SIZE, ops, { minAccess: 4, maxAccess: 8 }) });
  }

  // --- MMIO, as QEMU's edu_mmio_read/edu_mmio_write: 4-byte accesses below 0x80, 4 or 8 bytes from 0x80 ---

  private read(off: number, size: number): number {
    if (size !== 4) return 0xffffffff;
    switch (off) {
      case EDU_REGS.ID:
        return EDU_ID;
      case EDU_REGS.LIVENESS:
        return this.liveness;
      case EDU_REGS.FACTORIAL:
        return this.factorial;
      case EDU_REGS.STATUS:
        return this.status;
      case EDU_REGS.IRQ_STATUS:
        return this.irqStatus;
    }
    // A 4-byte read of a DMA register returns its low half; any other offset (+4 included) all ones.
    const reg = this.dmaRegister(off);
    return reg === undefined ? 0xffffffff : Number(reg & 0xffffffffn);
  }

  /** An 8-byte read: all ones below 0x80, the whole register at a DMA register, all ones elsewhere. */
  private read64(off: number): bigint {
    return off < 0x80 ? ALL_ONES : this.dmaRegister(off) ?? ALL_ONES;
  }

  private write(off: number, size: number, value: number): void {
    if (size !== 4) return;
    switch (off) {
      case EDU_REGS.LIVENESS:
        this.liveness = ~value >>> 0;
        return;
      case EDU_REGS.FACTORIAL:
        this.startFactorial(value);
        return;
      case EDU_REGS.STATUS:
        this.status = (value & EDU_STATUS.IRQ_FACT) !== 0 ? this.status | EDU_STATUS.IRQ_FACT : this.status & ~EDU_STATUS.IRQ_FACT;
        return;
      case EDU_REGS.IRQ_RAISE:
        this.raiseIrq(value);
        return;
      case EDU_REGS.IRQ_ACK:
        this.lowerIrq(value);
        return;
    }
    // A 4-byte write of a DMA register sets the whole register to the value (its upper half to 0).
    this.writeDma(off, BigInt(value >>> 0));
  }

  /** An 8-byte write: ignored below 0x80, the whole value at a DMA register. */
  private write64(off: number, value: bigint): void {
    if (off >= 0x80) this.writeDma(off, value);
  }

  private writeDma(off: number, value: bigint): void {
    // The DMA registers are frozen while a transfer is pending (QEMU's dma_rw: the spec's "while (cmd & 1)" loop).
    if (this.dmaRegister(off) === undefined || (this.dmaCmd & BigInt(EDU_DMA_CMD.START)) !== 0n) return;
    if (off === EDU_REGS.DMA_SRC) this.dmaSrc = value;
    else if (off === EDU_REGS.DMA_DST) this.dmaDst = value;
    else if (off === EDU_REGS.DMA_COUNT) this.dmaCount = value;
    else if ((value & BigInt(EDU_DMA_CMD.START)) !== 0n) {
      // Only a write with START issues a command (as QEMU: other writes to the command register are ignored).
      this.dmaCmd = value;
      this.after(this.dmaDelayNs, () => this.runDma(), 'dma');
    }
  }

  private dmaRegister(base: number): bigint | undefined {
    switch (base) {
      case EDU_REGS.DMA_SRC:
        return this.dmaSrc;
      case EDU_REGS.DMA_DST:
        return this.dmaDst;
      case EDU_REGS.DMA_COUNT:
        return this.dmaCount;
      case EDU_REGS.DMA_CMD:
        return this.dmaCmd;
    }
    return undefined;
  }

  // --- factorial ---

  private startFactorial(n: number): void {
    if ((this.status & EDU_STATUS.COMPUTING) !== 0) return;
    this.factorial = n >>> 0;
    this.status |= EDU_STATUS.COMPUTING;
    this.after(this.factorialNs, () => {
      let r = 1;
      for (let v = n >>> 0; v > 0; v--) r = Math.imul(r, v) >>> 0; // u32 arithmetic, as the device's
      this.factorial = r;
      this.status &= ~EDU_STATUS.COMPUTING;
      if (this.trace.wants('edu.factorial')) this.trace.trace('edu.factorial', this.bdf, { dev: this.bdf, n: n >>> 0, result: r });
      if ((this.status & EDU_STATUS.IRQ_FACT) !== 0) this.raiseIrq(EDU_IRQ.FACTORIAL);
    }, 'factorial');
  }

  private after(ns: number, fn: () => void, what: string): void {
    const ev: ScheduledEvent = this.ctx.scheduler.schedule(ns, () => {
      this.pending.delete(ev);
      fn();
    }, `${this.name}.${what}`);
    this.pending.add(ev);
  }

  // --- DMA ---

  private runDma(): void {
    if ((this.dmaCmd & BigInt(EDU_DMA_CMD.START)) === 0n) return;
    const toRam = (this.dmaCmd & BigInt(EDU_DMA_CMD.TO_RAM)) !== 0n;
    const action = this.points.dma.check({ dev: this.bdf, addr: toRam ? this.dmaDst : this.dmaSrc });
    if (action?.kind === 'delay') {
      this.after(action.ns, () => this.transfer(false), 'dma');
      return;
    }
    this.transfer(action?.kind === 'fail');
  }

  private transfer(injectedFailure: boolean): void {
    const toRam = (this.dmaCmd & BigInt(EDU_DMA_CMD.TO_RAM)) !== 0n;
    const bufAddr = toRam ? this.dmaSrc : this.dmaDst;
    const ramAddr = (toRam ? this.dmaDst : this.dmaSrc) & this.dmaMask;
    const count = this.dmaCount;
    let outcome: string;
    if (bufAddr < BigInt(EDU_BUFFER.BASE) || count > BigInt(EDU_BUFFER.SIZE) || bufAddr + count > BigInt(EDU_BUFFER.BASE + EDU_BUFFER.SIZE)) {
      outcome = 'out-of-range';
    } else if (injectedFailure) {
      outcome = 'injected';
    } else {
      const at = Number(bufAddr) - EDU_BUFFER.BASE;
      const n = Number(count);
      if (toRam) {
        const r = this.dmaWrite(ramAddr, this.buffer.subarray(at, at + n));
        outcome = r.ok ? 'ok' : r.fault;
      } else {
        // Page by page, as QEMU's pci_dma_read translates each IOMMU page on its own: a page the IOMMU
        // refuses reads as zeros (unassigned memory), the others arrive.
        const data = new Uint8Array(n);
        let fault: string | undefined;
        for (let off = 0; off < n; ) {
          const a = ramAddr + BigInt(off);
          const len = Math.min(n - off, PAGE - Number(a & PAGE_MASK));
          const r = this.dmaRead(a, len);
          if (r.ok) data.set(r.data, off);
          else fault ??= r.fault;
          off += len;
        }
        this.buffer.set(data, at);
        outcome = fault ?? 'ok';
      }
    }
    if (this.trace.wants('edu.dma')) {
      this.trace.trace('edu.dma', this.bdf, { dev: this.bdf, dir: toRam ? 'to-ram' : 'to-device', ram: hex(ramAddr), buffer: Number(bufAddr), count: Number(count), outcome });
    }
    this.dmaCmd &= ~BigInt(EDU_DMA_CMD.START);
    if ((this.dmaCmd & BigInt(EDU_DMA_CMD.IRQ)) !== 0n) this.raiseIrq(EDU_IRQ.DMA);
  }

  // --- interrupts ---

  private raiseIrq(value: number): void {
    this.irqStatus = (this.irqStatus | value) >>> 0;
    if (this.irqStatus === 0) return;
    const dropped = this.points.irq.check({ dev: this.bdf, status: this.irqStatus })?.kind === 'drop';
    if (!dropped) {
      if (this.msi.enabled) this.msi.notify(0);
      else this.intx.set(true);
    }
    if (this.trace.wants('edu.irq')) this.trace.trace('edu.irq', this.bdf, { dev: this.bdf, status: this.irqStatus, via: dropped ? 'dropped' : this.msi.enabled ? 'msi' : 'intx' });
  }

  private lowerIrq(value: number): void {
    this.irqStatus = (this.irqStatus & ~value) >>> 0;
    if (this.irqStatus === 0 && !this.msi.enabled) this.intx.set(false);
  }

  /** Reset (FLR is not offered; a conventional reset or VFIO's device reset through the bus): every register to its power-on value. */
  protected override deviceReset(): void {
    for (const ev of this.pending) this.ctx.scheduler.cancel(ev);
    this.pending.clear();
    this.liveness = 0;
    this.factorial = 0;
    this.status = 0;
    this.irqStatus = 0;
    this.dmaSrc = this.dmaDst = this.dmaCount = this.dmaCmd = 0n;
    this.buffer.fill(0);
    this.intx.set(false);
    this.msi.reset();
  }
}
