import { PCIE, PCIE_REGS, PCIE_TYPE } from '../pci/caps/pcie-regs.ts';
import type { ConfigAccessor } from '../pci/enumerate.ts';
import { CFG } from '../pci/header.ts';
import type { PciFunction } from '../pci/pci-function.ts';

/** PCI-X capability (PCI Local Bus spec, PCI-X addendum): ID and the Status register's Mode 2 bits. */
const PCI_CAP_ID_PCIX = 0x07;
const PCI_X_STATUS = 4;
const PCI_X_STATUS_266MHZ = 0x4000_0000;
const PCI_X_STATUS_533MHZ = 0x8000_0000;

/**
 * Can the host reach a bridge's secondary side's extended configuration
 * space (offsets 0x100-0xfff)? Linux pci_bridge_child_ext_cfg_accessible()
 * (drivers/pci/probe.c): PCIe root and switch ports are PCIe on both sides;
 * any other bridge (conventional PCI-to-PCI, PCIe-to-PCI/PCI-X) only when it
 * runs PCI-X Mode 2. Conventional PCI carries 256-byte configuration
 * requests only (PCIe Base §7.2.2; PCI Express to PCI/PCI-X Bridge spec).
 */
function childExtCfgAccessible(bridge: PciFunction): boolean {
  const pcie = bridge.caps.findStd(PCIE.CAP_ID);
  if (pcie !== undefined) {
    const type = PCIE_REGS.get('FLAGS', bridge.config.get16(pcie + PCIE.FLAGS), 'TYPE');
    if (type === PCIE_TYPE.ROOT_PORT || type === PCIE_TYPE.UPSTREAM || type === PCIE_TYPE.DOWNSTREAM) return true;
  }
  const pcix = bridge.caps.findStd(PCI_CAP_ID_PCIX);
  if (pcix === undefined) return false;
  return (bridge.config.get32(pcix + PCI_X_STATUS) & (PCI_X_STATUS_266MHZ | PCI_X_STATUS_533MHZ)) !== 0;
}

/** Class code of a host bridge (PCI_CLASS_BRIDGE_HOST), which pci_cfg_space_size() probes whatever its capabilities. */
const CLASS_BRIDGE_HOST = 0x0600;

/**
 * Does the kernel see this function's extended capabilities (ATS, PRI,
 * PASID, ACS, ...), i.e. is pci_cfg_space_size() 4096 (drivers/pci/probe.c)?
 * Linux sets PCI_BUS_FLAGS_NO_EXTCFG on a bus below a bridge whose secondary
 * side has no extended configuration space (and on every bus below that);
 * every function there has 256 bytes. So a device behind a conventional PCI
 * bridge or a PCIe-to-PCI bridge never gets ATS, PRI or PASID enabled by the
 * host, whatever its model implements: on conventional PCI there are no
 * Translation Requests, Page Request Messages or PASID TLP prefixes to carry.
 * Elsewhere only a PCI Express function, a PCI-X Mode 2 one or a host bridge
 * has more than 256 bytes. (The probe of offset 0x100 that
 * pci_cfg_space_size_ext adds finds the models' space always readable.)
 */
export function pciExtCfgAccessible(dev: PciFunction): boolean {
  for (let b = dev.bus?.upstream; b !== undefined; b = b.bus?.upstream) {
    if (!childExtCfgAccessible(b)) return false;
  }
  if (dev.config.get16(CFG.CLASS_DEVICE) === CLASS_BRIDGE_HOST || dev.caps.findStd(PCIE.CAP_ID) !== undefined) return true;
  const pcix = dev.caps.findStd(PCI_CAP_ID_PCIX);
  return pcix !== undefined && (dev.config.get32(pcix + PCI_X_STATUS) & (PCI_X_STATUS_266MHZ | PCI_X_STATUS_533MHZ)) !== 0;
}

/** Bytes of conventional configuration space (PCI_CFG_SPACE_SIZE) and of PCIe's (PCI_CFG_SPACE_EXP_SIZE). */
const CFG_SPACE_SIZE = 0x100;
const CFG_SPACE_EXP_SIZE = 0x1000;

/**
 * pci_find_ext_capability() (drivers/pci/pci.c): the offset of the first
 * extended capability with this ID, walking the list from 0x100 through
 * configuration reads, or 0 when there is none, when the kernel sees no
 * extended configuration space for the function, or when the list is
 * empty. At most one capability per 8 bytes is visited, so
 * a looping list ends.
 */
export function pciFindExtCapability(cfg: ConfigAccessor, dev: PciFunction, id: number): number {
  if (!pciExtCfgAccessible(dev)) return 0;
  const bus = dev.busNumber;
  const devfn = dev.devfn;
  let pos = CFG_SPACE_SIZE;
  let header = cfg.read(bus, devfn, pos, 4);
  // No function there (all-ones) or no capabilities (ID, version and next pointer all 0).
  if (header === 0 || header === 0xffffffff) return 0;
  for (let ttl = (CFG_SPACE_EXP_SIZE - CFG_SPACE_SIZE) / 8; ttl > 0; ttl--) {
    if ((header & 0xffff) === id) return pos;
    pos = (header >>> 20) & 0xffc;
    if (pos < CFG_SPACE_SIZE) break;
    header = cfg.read(bus, devfn, pos, 4);
  }
  return 0;
}
