import { PCIE, PCIE_REGS, PCIE_TYPE } from '../pci/caps/pcie-regs.ts';
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

/**
 * Does the kernel see this function's extended capabilities (ATS, PRI,
 * PASID, ACS, ...)? Linux sets PCI_BUS_FLAGS_NO_EXTCFG on a bus below a bridge
 * whose secondary side has no extended configuration space (and on every bus
 * below that); pci_cfg_space_size() is then 256 for each function there, and
 * pci_find_ext_capability() finds nothing. So a device behind a conventional
 * PCI bridge or a PCIe-to-PCI bridge never gets ATS, PRI or PASID enabled by
 * the host, whatever its model implements: on conventional PCI there are no
 * Translation Requests, Page Request Messages or PASID TLP prefixes to carry.
 */
export function pciExtCfgAccessible(dev: PciFunction): boolean {
  for (let b = dev.bus?.upstream; b !== undefined; b = b.bus?.upstream) {
    if (!childExtCfgAccessible(b)) return false;
  }
  return true;
}
