/**
 * A checksum engine: software writes a buffer's address and length and a 1
 * to GO; the device reads the buffer by DMA (through the IOMMU), leaves the
 * sum of its bytes in SUM, sets DONE (or FAULT) in STATUS and raises MSI-X
 * vector 0. It is the device docs/writing-a-device.md builds, section by
 * section: identity, registers, MSI-X, virtual time, DMA, reset, its own
 * injection point and trace event.
 */
import {
  MemoryRegion,
  MsixCapability,
  PcieCapability,
  PciFunction,
  RegisterFile,
  defineRegisters,
  type ScheduledEvent,
  type SimContext,
} from '../../src/index.ts';

export const CSUM_REGS = { ADDR: 0x00, LEN: 0x08, GO: 0x0c, SUM: 0x10, STATUS: 0x14 } as const;
export const CSUM_STATUS = { DONE: 1 << 0, FAULT: 1 << 1 } as const;

const REGS = defineRegisters('csum', [
  { name: 'ADDR', offset: CSUM_REGS.ADDR, size: 8 },
  { name: 'LEN', offset: CSUM_REGS.LEN, size: 4 },
  { name: 'GO', offset: CSUM_REGS.GO, size: 4, access: 'wo' },
  { name: 'SUM', offset: CSUM_REGS.SUM, size: 4, access: 'ro' },
  { name: 'STATUS', offset: CSUM_REGS.STATUS, size: 4, fields: [['DONE', 0, 0, 'w1c'], ['FAULT', 1, 1, 'w1c']] },
]);

/** The steps of this device that can fail in hardware (DESIGN.md §7), with the actions each carries out. */
export const CSUM_INJECTION_POINTS = {
  'checksum.dma': { description: 'the checksum engine\'s buffer read fails as if the IOMMU refused it (fail: STATUS.FAULT)', actions: ['fail'] },
} as const;

/** Its trace events, and the shape of each one's arguments. */
export interface ChecksumEvents {
  'checksum.done': { dev: string; len: number; sum: number; fault: string };
}

export class ChecksumDevice extends PciFunction {
  readonly regs = new RegisterFile('csum', 0x1000, REGS);
  readonly msix: MsixCapability;
  private readonly ctx: SimContext;
  private readonly points;
  private readonly trace;
  private readonly sums;
  private pending: ScheduledEvent | undefined;

  constructor(ctx: SimContext, name: string) {
    super(name, { vendorId: 0x1b36, deviceId: 0x10ef, classCode: 0xff0000 }, 0); // header type 0: an endpoint
    this.ctx = ctx;
    new PcieCapability(this.config, this.caps, { type: 'rc-endpoint', flr: true, onFlr: () => this.reset() });
    this.msix = new MsixCapability(this.config, this.caps, {
      vectors: 1,
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
    this.points = ctx.faults.define(CSUM_INJECTION_POINTS);
    this.trace = ctx.tracer.define<ChecksumEvents>({ 'checksum.done': 'the checksum engine finished a buffer' });
    this.sums = ctx.counters.counter(`${name}.sums`);
    this.regs.onWrite('GO', () => this.go());
  }

  private go(): void {
    if (this.pending !== undefined) return; // one buffer at a time: GO while busy is ignored
    const len = this.regs.get('LEN');
    // The work takes virtual time: 100 ns plus 1 ns per byte.
    this.pending = this.ctx.scheduler.schedule(100 + len, () => this.checksum(len), `${this.name}.checksum`);
  }

  private checksum(len: number): void {
    this.pending = undefined;
    const injected = this.points['checksum.dma'].check({ dev: this.bdf, len });
    const r = injected?.kind === 'fail' ? { ok: false as const, fault: 'INJECTED' } : this.dmaRead(this.regs.get64('ADDR'), len);
    let sum = 0;
    if (r.ok) for (const b of r.data) sum = (sum + b) >>> 0;
    this.regs.set('SUM', sum);
    this.regs.setField('STATUS', r.ok ? 'DONE' : 'FAULT', 1);
    this.sums.value++;
    if (this.trace.wants('checksum.done')) this.trace.trace('checksum.done', this.bdf, { dev: this.bdf, len, sum, fault: r.ok ? '' : r.fault });
    this.msix.notify(0);
  }

  /** Function Level Reset and VFIO_DEVICE_RESET land here: registers, MSI-X state and pending work go back to power-on. */
  protected override deviceReset(): void {
    if (this.pending !== undefined) this.ctx.scheduler.cancel(this.pending);
    this.pending = undefined;
    this.regs.reset();
    this.msix.reset();
  }
}
