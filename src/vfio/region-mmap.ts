import { EINVAL } from '../uapi/errno.ts';
import type { FileMapping } from '../host/vfs.ts';
import { CFG, COMMAND } from '../pci/header.ts';
import { VFIO_PCI_NUM_REGIONS, VFIO_PCI_OFFSET_SHIFT, VFIO_PCI_ROM_REGION_INDEX } from '../uapi/vfio.ts';
import type { VfioPciDevice } from './vfio-pci.ts';

const PAGE = 4096;
const OFFSET_MASK = (1n << VFIO_PCI_OFFSET_SHIFT) - 1n;

/**
 * A BAR vfio-pci lets the user mmap (vfio_pci_probe_mmaps): a memory BAR of at
 * least a page, or a smaller one that starts on a page boundary (the rest of
 * its page is reserved for it). I/O BARs never.
 */
export function barMmappable(dev: VfioPciDevice, index: number): boolean {
  const bar = dev.fn.bars[index];
  if (bar === undefined || bar.kind === 'io' || bar.size === 0) return false;
  return bar.size >= PAGE || dev.barAddress(index) % PAGE === 0;
}

/**
 * __vfio_pci_memory_enabled(): the user's view of the command register has
 * memory decoding on. The mmap fault handler (vfio_pci_vmf_insert_pfn) gives
 * SIGBUS otherwise, and reset or clearing the bit zaps the mappings first, so
 * every CPU access asks this.
 */
export function memoryEnabled(dev: VfioPciDevice): boolean {
  const v = dev.vconfig?.vconfig;
  return v !== undefined && (v[CFG.COMMAND]! & COMMAND.MEMORY) !== 0;
}

/**
 * vfio_pci_core_mmap(): the region index is the offset's top bits
 * (VFIO_PCI_OFFSET_SHIFT); only MAP_SHARED; only BARs 0-5 that are mmappable
 * (ROM, config space and VGA are -EINVAL); the request must end within the
 * page-aligned BAR (-EINVAL). The MSI-X table does not stop it: since Linux
 * 4.16 vfio-pci maps it and says so with VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
 * leaving interrupt isolation to the IOMMU / interrupt remapping.
 */
export function mmapRegion(dev: VfioPciDevice, length: number, offset: bigint, shared: boolean): FileMapping | number {
  const index = Number(offset >> VFIO_PCI_OFFSET_SHIFT);
  if (index >= VFIO_PCI_NUM_REGIONS) return -EINVAL;
  if (!shared) return -EINVAL;
  if (index >= VFIO_PCI_ROM_REGION_INDEX) return -EINVAL;
  if (!barMmappable(dev, index)) return -EINVAL;
  const physLen = Math.ceil(dev.fn.bars[index]!.size / PAGE) * PAGE;
  const reqStart = Number(offset & OFFSET_MASK);
  if (reqStart + length > physLen) return -EINVAL;
  const tracer = dev.mod.host.platform.tracer;
  tracer.trace('vfio.mmap', dev.fn.bdf, { dev: dev.fn.bdf, index, offset: reqStart, length });
  return { phys: dev.barAddress(index) + reqStart, accessible: () => memoryEnabled(dev) };
}
