import type { Board } from '../../../machines/board.ts';
import { ecamAccessor } from '../../../src/pci/enumerate.ts';
import { listCapabilities } from '../../../src/pci/lspci.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';

const PASID_EXT_CAP = 0x001b;

/**
 * pci_enable_pasid() through configuration space: turn on the PASID
 * capability with whatever execute/privileged support it advertises (PCIe
 * 7.8.8). Returns the device's PASID width in bits, 0 without the capability.
 */
export function enablePasid(board: Board, dev: PciFunction): number {
  const cfg = ecamAccessor(board.sysmem, board.layout.ecamBase);
  const bus = dev.busNumber;
  const cap = listCapabilities(cfg, bus, dev.devfn).find((c) => c.kind === 'ext' && c.id === PASID_EXT_CAP);
  if (cap === undefined) return 0;
  const caps = cfg.read(bus, dev.devfn, cap.offset + 4, 2);
  const width = (caps >>> 8) & 0x1f;
  cfg.write(bus, dev.devfn, cap.offset + 6, 2, 1 | (caps & 0b110));
  return width;
}
