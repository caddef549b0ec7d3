import { Board } from '../../machines/board.ts';
import { MemoryRegion } from '../../src/memory/memory-region.ts';
import { PciFunction, type PciIdentity } from '../../src/pci/pci-function.ts';
import { ecamAccessor, type ConfigAccessor } from '../../src/pci/enumerate.ts';
import type { BarSpec } from '../../src/pci/bar.ts';
import { PcieCapability } from '../../src/pci/caps/pcie.ts';

/** A bare endpoint with the BARs a test asks for, each backed by a scratch register array. */
export class BareFunction extends PciFunction {
  readonly barData = new Map<number, Uint32Array>();
  constructor(name = 'bare', id: Partial<PciIdentity> = {}, bars: Omit<BarSpec, 'region'>[] = []) {
    super(name, { vendorId: 0x1234, deviceId: 0x5678, classCode: 0xff0000, ...id }, 0);
    let index = 0;
    for (const spec of bars) {
      const words = new Uint32Array(Math.min(spec.size, 0x1000) / 4);
      this.barData.set(index, words);
      const region = MemoryRegion.mmio(`${name}-bar${index}`, spec.size, {
        read: (off) => words[(off >> 2) % words.length]!,
        write: (off, _size, v) => {
          words[(off >> 2) % words.length] = v;
        },
      }, { minAccess: 4, maxAccess: 4 });
      this.defineBar(index, { ...spec, region });
      index += spec.kind === 'mem64' ? 2 : 1;
    }
  }
}

export function newBoard(kind: 'virt-smmuv3' | 'q35-vtd' = 'q35-vtd', ramBytes = 2 ** 30): { board: Board; cfg: ConfigAccessor } {
  const board = new Board(kind, { ramBytes });
  return { board, cfg: ecamAccessor(board.sysmem, board.layout.ecamBase) };
}

/**
 * A bare PCI Express endpoint: with the PCI Express capability, without
 * which Linux sees no extended configuration space (pci_cfg_space_size())
 * and so no ATS, PRI or PASID, and treats the function as conventional PCI
 * that cannot isolate its requests (pci_acs_enabled()).
 */
export class BarePcieFunction extends BareFunction {
  constructor(name = 'bare-pcie', id: Partial<PciIdentity> = {}, bars: Omit<BarSpec, 'region'>[] = []) {
    super(name, id, bars);
    new PcieCapability(this.config, this.caps, { type: 'endpoint' });
  }
}
