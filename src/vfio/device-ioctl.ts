import { EINVAL } from '../uapi/errno.ts';
import type { Process } from '../host/process.ts';
import { CFG } from '../pci/header.ts';
import { MSI, MSI_REGS } from '../pci/caps/msi.ts';
import { MSIX, MSIX_REGS } from '../pci/caps/msix.ts';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  VFIO_PCI_BAR5_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_REQ_IRQ_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfio_device_info,
  vfio_info_cap_header,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
  vfioPciIndexToOffset,
} from '../uapi/vfio.ts';
import { InfoCaps, writeInfo } from './info-caps.ts';
import { barMmappable } from './region-mmap.ts';
import { head, type UserArg } from './user-arg.ts';
import type { VfioPciDevice } from './vfio-pci.ts';


/** vfio_pci_ioctl_get_info(). */
export function getInfo(dev: VfioPciDevice, u: UserArg): number {
  const minsz = 16; // offsetofend(struct vfio_device_info, num_irqs)
  const info = head(u, vfio_device_info, minsz);
  if (typeof info === 'number') return info;
  if (info.num('argsz') < minsz) return -EINVAL;
  const copySz = Math.min(info.num('argsz'), vfio_device_info.size);
  info.setNum('flags', VFIO_DEVICE_FLAGS_PCI | (dev.resetWorks ? VFIO_DEVICE_FLAGS_RESET : 0));
  info.setNum('num_regions', VFIO_PCI_NUM_REGIONS);
  info.setNum('num_irqs', VFIO_PCI_NUM_IRQS);
  return writeInfo(u, info, copySz, new InfoCaps());
}

/**
 * vfio_pci_ioctl_get_region_info(): BARs at index << 40 with their size and
 * READ/WRITE (+MMAP for mappable memory BARs; the MSI-X BAR carries the
 * MSIX_MAPPABLE capability: the whole BAR may be mapped, table included),
 * the ROM, the config space; no VGA.
 */
export function getRegionInfo(dev: VfioPciDevice, u: UserArg): number {
  const info = head(u, vfio_region_info);
  if (typeof info === 'number') return info;
  if (info.num('argsz') < vfio_region_info.size) return -EINVAL;
  const index = info.num('index');
  const caps = new InfoCaps();
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
    info.setBig('offset', vfioPciIndexToOffset(index));
    info.setBig('size', dev.cfgSize);
    info.setNum('flags', VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
  } else if (index <= VFIO_PCI_BAR5_REGION_INDEX) {
    info.setBig('offset', vfioPciIndexToOffset(index));
    const bar = dev.fn.bars[index];
    info.setBig('size', bar?.size ?? 0);
    let flags = 0;
    if (bar !== undefined) {
      flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
      if (barMmappable(dev, index)) {
        flags |= VFIO_REGION_INFO_FLAG_MMAP;
        // msix_mmappable_cap(): the MSI-X BAR may be mapped whole (Linux 4.16+; no sparse areas).
        const m = dev.msixInfo();
        if (m !== undefined && m[0] === index) caps.add(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1, vfio_info_cap_header.size);
      }
    }
    info.setNum('flags', flags);
  } else if (index === VFIO_PCI_ROM_REGION_INDEX) {
    // No function here has an expansion ROM.
    info.setBig('offset', vfioPciIndexToOffset(index));
    info.setBig('size', 0);
    info.setNum('flags', 0);
  } else {
    // VGA (index 8) needs a VGA device; nothing lies beyond.
    return -EINVAL;
  }
  if (caps.size > 0) info.setNum('flags', info.num('flags') | VFIO_REGION_INFO_FLAG_CAPS);
  info.setNum('cap_offset', 0);
  return writeInfo(u, info, vfio_region_info.size, caps);
}

/** vfio_pci_get_irq_count(). */
export function irqCount(dev: VfioPciDevice, index: number): number {
  const fn = dev.fn;
  switch (index) {
    case VFIO_PCI_INTX_IRQ_INDEX:
      return dev.vconfig !== undefined && dev.vconfig.vconfig[CFG.INTERRUPT_PIN] !== 0 ? 1 : 0;
    case VFIO_PCI_MSI_IRQ_INDEX: {
      const b = fn.caps.findStd(MSI.CAP_ID);
      return b === undefined ? 0 : 2 ** MSI_REGS.get('FLAGS', dev.hw.read(b + MSI.FLAGS, 2), 'MMC');
    }
    case VFIO_PCI_MSIX_IRQ_INDEX: {
      const b = fn.caps.findStd(MSIX.CAP_ID);
      return b === undefined ? 0 : MSIX_REGS.get('FLAGS', dev.hw.read(b + MSIX.FLAGS, 2), 'QSIZE') + 1;
    }
    // 7.3: one ERR eventfd whether or not the function is PCI Express.
    case VFIO_PCI_ERR_IRQ_INDEX:
    case VFIO_PCI_REQ_IRQ_INDEX:
      return 1;
    default:
      return 0;
  }
}

/** vfio_pci_ioctl_get_irq_info(). */
export function getIrqInfo(dev: VfioPciDevice, u: UserArg): number {
  const info = head(u, vfio_irq_info);
  if (typeof info === 'number') return info;
  const index = info.num('index');
  if (info.num('argsz') < vfio_irq_info.size || index >= VFIO_PCI_NUM_IRQS) return -EINVAL;
  let flags = VFIO_IRQ_INFO_EVENTFD;
  if (index === VFIO_PCI_INTX_IRQ_INDEX) flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
  else flags |= VFIO_IRQ_INFO_NORESIZE;
  info.setNum('flags', flags);
  info.setNum('count', irqCount(dev, index));
  return u.write(0, info.bytes);
}

/**
 * vfio_set_irqs_validate_and_prepare() + vfio_pci_set_irqs_ioctl(): one data
 * type, range inside the index's count, enough data for count entries.
 */
export function setIrqs(dev: VfioPciDevice, u: UserArg, proc: Process): number {
  const minsz = vfio_irq_set.size;
  const hdr = head(u, vfio_irq_set);
  if (typeof hdr === 'number') return hdr;
  const argsz = hdr.num('argsz');
  const flags = hdr.num('flags');
  const index = hdr.num('index');
  const start = hdr.num('start');
  const count = hdr.num('count');
  const max = irqCount(dev, index);
  if (argsz < minsz || index >= VFIO_PCI_NUM_IRQS || count >= 0xffffffff - start) return -EINVAL;
  if ((flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) !== 0) return -EINVAL;
  if (start >= max || start + count > max) return -EINVAL;
  let size: number;
  switch (flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
      size = 0;
      break;
    case VFIO_IRQ_SET_DATA_BOOL:
      size = 1;
      break;
    case VFIO_IRQ_SET_DATA_EVENTFD:
      size = 4;
      break;
    default:
      return -EINVAL;
  }
  let data: Uint8Array = new Uint8Array(0);
  if (size > 0) {
    if (argsz - minsz < count * size) return -EINVAL;
    const d = u.read(minsz, count * size);
    if (typeof d === 'number') return d;
    data = d;
  }
  return dev.irqs.set(index, flags, start, count, data, proc);
}
