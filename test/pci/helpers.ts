import { Board } from '../../machines/board.ts';
import { MemoryRegion } from '../../src/memory/memory-region.ts';
import { PciFunction, type PciIdentity } from '../../src/pci/pci-function.ts';
import { ecamAccessor, type ConfigAccessor } from '../../src/pci/enumerate.ts';
import type { BarSpec } from '../../src/pci/bar.ts';

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
