/**
 * Writing a new device: a "checksum engine" that reads a buffer by DMA and
 * leaves the sum of its bytes in a register. It shows the four things every
 * device has: an identity, a BAR of registers declared as a table, DMA
 * through its bus-master path (so the IOMMU sees it), and virtual time.
 * It is plugged into a whole machine with `devices`, bound to vfio-pci like
 * any endpoint, and driven from a process through VFIO type1.
 * Run: npx tsx examples/write-a-device.ts
 */
import { createMachine, DEFAULT_DEVICES } from '../machines/machine.ts';
import { RegisterFile } from '../src/hw/register-file.ts';
import { defineRegisters } from '../src/hw/registers.ts';
import { MemoryRegion } from '../src/memory/memory-region.ts';
import { PcieCapability } from '../src/pci/caps/pcie.ts';
import { PciFunction } from '../src/pci/pci-function.ts';
import type { SimContext } from '../src/sim/context.ts';
import { vfioType1Setup } from '../tools/scenario/vmm.ts';
import { VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX } from '../src/uapi/vfio.ts';
import { CFG, COMMAND } from '../src/pci/header.ts';

/** The registers as one table: offsets, sizes, access, and fields as [name, msb, lsb?, access?]. */
const REGS = defineRegisters('csum', [
  { name: 'ADDR', offset: 0x00, size: 8 },
  { name: 'LEN', offset: 0x08, size: 4 },
  { name: 'GO', offset: 0x0c, size: 4 },
  { name: 'SUM', offset: 0x10, size: 4, access: 'ro' },
  { name: 'STATUS', offset: 0x14, size: 4, access: 'ro', fields: [['DONE', 0], ['FAULT', 1]] },
]);
export const CSUM_REGS = REGS.offsets();

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
    const r = this.dmaRead(this.regs.getU64('ADDR'), len);
    if (!r.ok) {
      this.regs.set('STATUS', REGS.pack('STATUS', { FAULT: 1 }));
      return;
    }
    let sum = 0;
    for (const b of r.data ?? []) sum = (sum + b) >>> 0;
    this.regs.set('SUM', sum);
    this.regs.set('STATUS', REGS.pack('STATUS', { DONE: 1 }));
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
