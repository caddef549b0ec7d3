import { IntxPin } from '../../src/irq/intx.ts';
import { MemoryRegion } from '../../src/memory/memory-region.ts';
import { MsiCapability } from '../../src/pci/caps/msi.ts';
import { MsixCapability } from '../../src/pci/caps/msix.ts';
import { PcieCapability } from '../../src/pci/caps/pcie.ts';
import { PciFunction } from '../../src/pci/pci-function.ts';

/**
 * A PCIe endpoint without FLR that has both MSI (4 vectors, per-vector
 * masking) and MSI-X (8 vectors, table at 0x2000 and PBA at 0x3800 of a 16K
 * 64-bit BAR0 whose first 8K are scratch registers): for interrupt, mmap
 * and MSI-X table protection tests. Its INTA# pin is wired: tests
 * raise and clear its interrupt condition with `intx.set()`.
 */
export class IrqFunction extends PciFunction {
  readonly msi: MsiCapability;
  readonly msix: MsixCapability;
  readonly scratch = new Uint32Array(0x800);
  readonly intx: IntxPin;

  constructor(name = 'irq') {
    super(name, { vendorId: 0x1234, deviceId: 0x1111, classCode: 0xff0000 }, 0);
    new PcieCapability(this.config, this.caps, { type: 'endpoint', flr: false });
    this.intx = new IntxPin(this, 1);
    this.msi = new MsiCapability(this.config, this.caps, { vectors: 4, perVectorMask: true, send: (a, d) => this.sendMsi(a, d) });
    this.msix = new MsixCapability(this.config, this.caps, {
      vectors: 8,
      tableBar: 0,
      tableOffset: 0x2000,
      pbaOffset: 0x3800,
      send: (a, d) => this.sendMsi(a, d),
    });
    const bar = MemoryRegion.container(`${name}-bar0`, 0x4000);
    bar.addSubregion(
      0,
      MemoryRegion.mmio(`${name}-scratch`, 0x2000, {
        read: (o) => this.scratch[o >> 2]!,
        write: (o, _s, v) => {
          this.scratch[o >> 2] = v;
        },
      }, { minAccess: 4, maxAccess: 4 }),
    );
    bar.addSubregion(0x2000, this.msix.tableRegion);
    bar.addSubregion(0x3800, this.msix.pbaRegion);
    this.defineBar(0, { kind: 'mem64', size: 0x4000, region: bar });
  }
}
