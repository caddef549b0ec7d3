/**
 * Writing a new device: a "checksum engine" that reads a buffer by DMA and
 * leaves the sum of its bytes in a register. It shows the four things every
 * device has: an identity, a BAR of registers declared as a table, DMA
 * through its bus-master path (so the IOMMU sees it), and virtual time.
 * It is plugged into a whole machine with `devices`, bound to vfio-pci like
 * any endpoint, and driven from a process through VFIO type1.
 * Run: npx tsx examples/write-a-device.ts
 */
import {
  createMachine,
  DEFAULT_DEVICES,
  RegisterFile,
  type RegisterDef,
  MemoryRegion,
  PcieCapability,
  PciFunction,
  type SimContext,
  vfioType1Setup,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  CFG,
  COMMAND,
} from '../src/index.ts';

export const CSUM_REGS = { ADDR: 0x00, LEN: 0x08, GO: 0x0c, SUM: 0x10, STATUS: 0x14 } as const;
const DONE = 1;
const FAULT = 2;

const REGS: RegisterDef[] = [
  { name: 'ADDR', offset: CSUM_REGS.ADDR, size: 8 },
  { name: 'LEN', offset: CSUM_REGS.LEN, size: 4 },
  { name: 'GO', offset: CSUM_REGS.GO, size: 4 },
  { name: 'SUM', offset: CSUM_REGS.SUM, size: 4, access: 'ro' },
  { name: 'STATUS', offset: CSUM_REGS.STATUS, size: 4, access: 'ro' },
];

export class ChecksumDevice extends PciFunction {
  readonly regs = new RegisterFile('csum', 0x1000, REGS);

  constructor(private readonly ctx: SimContext, name: string) {
    super(name, { vendorId: 0x1b36, deviceId: 0x10ef, classCode: 0xff0000 }, 0);
    new PcieCapability(this.config, this.caps, { type: 'rc-endpoint' });
    this.defineBar(0, { kind: 'mem32', size: 0x1000, region: MemoryRegion.mmio(`${name}-regs`, 0x1000, this.regs.ops, { maxAccess: 8 }) });
    this.regs.onWrite('GO', () => {
      const len = this.regs.get('LEN');
      // The work takes virtual time: 100 ns plus 1 ns per byte.
      this.ctx.scheduler.schedule(100 + len, () => this.checksum(len), `${name}.checksum`);
    });
  }

  private checksum(len: number): void {
    const r = this.dmaRead(BigInt(this.regs.get64('ADDR')), len);
    if (!r.ok) {
      this.regs.set('STATUS', FAULT);
      return;
    }
    let sum = 0;
    for (const b of r.data ?? []) sum = (sum + b) >>> 0;
    this.regs.set('SUM', sum);
    this.regs.set('STATUS', DONE);
  }
}

export function runChecksumExample(say: (s: string) => void = console.log): number {
  const m = createMachine('q35-vtd', {
    devices: [...DEFAULT_DEVICES, { bdf: '0000:00:04.0', kind: (ctx, name) => new ChecksumDevice(ctx, name), name: 'csum' }],
  });
  const p = m.host.spawn({ memlockLimit: 2 ** 24 });
  const { v, container, device } = vfioType1Setup(m, p, '0000:00:04.0');
  const buf = p.mmap(4096, { populate: true });
  p.memWrite(buf, new Uint8Array([1, 2, 3, 4, 250]));
  v.mapDma(container, { vaddr: buf, iova: 0x4000_0000n, size: 4096 });
  const cfg = v.regionInfo(device, VFIO_PCI_CONFIG_REGION_INDEX);
  const bar0 = v.regionInfo(device, VFIO_PCI_BAR0_REGION_INDEX);
  if (typeof cfg === 'number' || typeof bar0 === 'number') throw new Error('region info failed');
  p.pwrite(device, new Uint8Array([COMMAND.MEMORY | COMMAND.MASTER, 0]), cfg.offset + BigInt(CFG.COMMAND));
  const w32 = (off: number, val: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, val, true);
    p.pwrite(device, b, bar0.offset + BigInt(off));
  };
  const r32 = (off: number) => {
    const b = p.pread(device, 4, bar0.offset + BigInt(off)) as Uint8Array;
    return new DataView(b.buffer, b.byteOffset).getUint32(0, true);
  };
  w32(CSUM_REGS.ADDR, 0x4000_0000);
  w32(CSUM_REGS.ADDR + 4, 0);
  w32(CSUM_REGS.LEN, 5);
  const t0 = m.now();
  w32(CSUM_REGS.GO, 1);
  m.run();
  const sum = r32(CSUM_REGS.SUM);
  say(`checksum device at 0000:00:04.0 behind VT-d: STATUS=${r32(CSUM_REGS.STATUS)} SUM=${sum} after ${m.now() - t0} ns of virtual time`);
  p.exit();
  return sum;
}

if (import.meta.url === `file://${process.argv[1]}`) runChecksumExample();
