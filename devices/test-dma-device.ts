import { RegisterFile, type RegisterDef } from '../src/hw/register-file.ts';
import { MemoryRegion } from '../src/memory/memory-region.ts';
import { MsixCapability } from '../src/pci/caps/msix.ts';
import { PcieCapability } from '../src/pci/caps/pcie.ts';
import { PciFunction } from '../src/pci/pci-function.ts';
import type { SimContext } from '../src/sim/context.ts';
import type { Counter } from '../src/trace/counters.ts';

/**
 * The plain test device: no ATS, PRI or PASID. Software writes a source,
 * destination and length into BAR0 and a 1 to CMD; after a virtual-time
 * delay the device copies the bytes by DMA (read then write, through its
 * bus-master path, so an IOMMU sees both), sets DONE or ERROR in STATUS and
 * raises the MSI-X vector named in IRQ_VECTOR. It is the smallest complete
 * example of a device: identity, a BAR of registers, DMA and an interrupt.
 *
 * IDs: vendor 0x1b36 (Red Hat, the vendor ID QEMU's own virtual devices use),
 * device 0x10e0, an ID local to ioemu.
 */
export const TEST_DEVICE_ID = { vendorId: 0x1b36, deviceId: 0x10e0, classCode: 0x088000 } as const;

export const TEST_REGS = {
  ID: 0x00,
  VERSION: 0x04,
  SRC: 0x08,
  DST: 0x10,
  LEN: 0x18,
  CMD: 0x1c,
  STATUS: 0x20,
  ERROR: 0x24,
  IRQ_VECTOR: 0x28,
  COMPLETED: 0x2c,
} as const;

export const TEST_STATUS = { BUSY: 1 << 0, DONE: 1 << 1, ERROR: 1 << 2 } as const;
export const TEST_CMD = { START: 1 << 0 } as const;
/** ERROR register codes. */
export const TEST_ERROR = { NONE: 0, READ_FAULT: 1, WRITE_FAULT: 2, BAD_LENGTH: 3, BUSY: 4 } as const;

/** 'IOEM' read as a little-endian word. */
export const TEST_MAGIC = 0x4d454f49;
export const TEST_MAX_LEN = 1 << 20;
export const TEST_MSIX_VECTORS = 4;
/** No interrupt on completion. */
export const TEST_NO_IRQ = 0xffffffff;

const REG_DEFS: RegisterDef[] = [
  { name: 'ID', offset: TEST_REGS.ID, size: 4, access: 'ro', reset: TEST_MAGIC },
  { name: 'VERSION', offset: TEST_REGS.VERSION, size: 4, access: 'ro', reset: 0x0001_0000 },
  { name: 'SRC', offset: TEST_REGS.SRC, size: 8 },
  { name: 'DST', offset: TEST_REGS.DST, size: 8 },
  { name: 'LEN', offset: TEST_REGS.LEN, size: 4 },
  { name: 'CMD', offset: TEST_REGS.CMD, size: 4, fields: [['START', 0, 0, 'wo']] },
  {
    name: 'STATUS',
    offset: TEST_REGS.STATUS,
    size: 4,
    fields: [['BUSY', 0, 0, 'ro'], ['DONE', 1, 1, 'w1c'], ['ERROR', 2, 2, 'w1c']],
  },
  { name: 'ERROR', offset: TEST_REGS.ERROR, size: 4, access: 'ro' },
  { name: 'IRQ_VECTOR', offset: TEST_REGS.IRQ_VECTOR, size: 4, reset: TEST_NO_IRQ },
  { name: 'COMPLETED', offset: TEST_REGS.COMPLETED, size: 4, access: 'ro' },
];

/** Virtual time a copy takes: a fixed setup cost plus 4 GB/s. */
const SETUP_NS = 200;
const NS_PER_BYTE = 0.25;

export class TestDmaDevice extends PciFunction {
  readonly regs = new RegisterFile('test-dma', 0x1000, REG_DEFS);
  readonly msix: MsixCapability;
  private readonly ctx: SimContext;
  private readonly copies: Counter;
  private readonly errors: Counter;
  private pendingCopy: import('../src/sim/scheduler.ts').ScheduledEvent | undefined;

  constructor(ctx: SimContext, name = 'test-dma') {
    super(name, TEST_DEVICE_ID, 0);
    this.ctx = ctx;
    new PcieCapability(this.config, this.caps, { type: 'rc-endpoint', flr: true, onFlr: () => this.reset() });
    this.msix = new MsixCapability(this.config, this.caps, {
      vectors: TEST_MSIX_VECTORS,
      tableBar: 2,
      tableOffset: 0,
      pbaBar: 2,
      pbaOffset: 0x800,
      send: (addr, data) => this.sendMsi(addr, data),
      tracer: ctx.tracer,
      bdf: name,
    });
    this.defineBar(0, { kind: 'mem32', size: 0x1000, region: MemoryRegion.mmio(`${name}-regs`, 0x1000, this.regs.ops, { maxAccess: 8 }) });
    const msixBar = MemoryRegion.container(`${name}-msix`, 0x1000);
    msixBar.addSubregion(0, this.msix.tableRegion);
    msixBar.addSubregion(0x800, this.msix.pbaRegion);
    this.defineBar(2, { kind: 'mem64', size: 0x1000, region: msixBar });
    this.regs.onWrite('CMD', () => this.command_());
    this.copies = ctx.counters.counter(`${name}.copies`);
    this.errors = ctx.counters.counter(`${name}.errors`);
  }

  private command_(): void {
    if ((this.regs.get('CMD') & TEST_CMD.START) === 0) return;
    if (this.pendingCopy !== undefined) {
      this.finish(TEST_ERROR.BUSY);
      return;
    }
    const len = this.regs.get('LEN');
    if (len === 0 || len > TEST_MAX_LEN) {
      this.finish(TEST_ERROR.BAD_LENGTH);
      return;
    }
    this.regs.setField('STATUS', 'BUSY', 1);
    this.pendingCopy = this.ctx.scheduler.schedule(SETUP_NS + Math.ceil(len * NS_PER_BYTE), () => this.copy(len), `${this.name}.copy`);
  }

  private copy(len: number): void {
    this.pendingCopy = undefined;
    const src = this.regs.get64('SRC');
    const dst = this.regs.get64('DST');
    const r = this.dmaRead(src, len);
    if (!r.ok) return this.finish(TEST_ERROR.READ_FAULT, r.fault);
    const w = this.dmaWrite(dst, r.data!);
    if (!w.ok) return this.finish(TEST_ERROR.WRITE_FAULT, w.fault);
    this.copies.value++;
    this.regs.set('COMPLETED', (this.regs.get('COMPLETED') + 1) >>> 0);
    this.finish(TEST_ERROR.NONE);
  }

  private finish(error: number, fault = ''): void {
    this.regs.setField('STATUS', 'BUSY', this.pendingCopy !== undefined ? 1 : 0);
    if (error === TEST_ERROR.NONE) this.regs.setField('STATUS', 'DONE', 1);
    else {
      this.errors.value++;
      this.regs.setField('STATUS', 'ERROR', 1);
      this.regs.set('ERROR', error);
    }
    this.ctx.tracer.trace('device.op', this.bdf, { device: this.name, op: 'copy.done', detail: error === 0 ? 'ok' : `error ${error} ${fault}` });
    const vector = this.regs.get('IRQ_VECTOR');
    if (vector < TEST_MSIX_VECTORS) this.msix.notify(vector);
  }

  protected override deviceReset(): void {
    if (this.pendingCopy !== undefined) this.ctx.scheduler.cancel(this.pendingCopy);
    this.pendingCopy = undefined;
    this.regs.reset();
    this.msix.reset();
  }
}
