import { ACS, REQ_ACS_FLAGS, acsFlagsEnabled } from '../pci/caps/acs.ts';
import { PCIE, PCIE_REGS, PCIE_TYPE } from '../pci/caps/pcie-regs.ts';
import type { ConfigAccessor } from '../pci/enumerate.ts';
import { CFG, HEADER_TYPE_MULTIFUNCTION } from '../pci/header.ts';
import { listCapabilities } from '../pci/lspci.ts';
import type { PciFunction } from '../pci/pci-function.ts';

/** Device/Port Types pci_acs_enabled() names that PCIE_TYPE does not (Linux PCI_EXP_TYPE_LEG_END, _PCIE_BRIDGE, _RC_EC). */
const PCIE_TYPE_LEGACY_ENDPOINT = 0x1;
const PCIE_TYPE_PCIE_BRIDGE = 0x8;
const PCIE_TYPE_RC_EVENT_COLLECTOR = 0xa;

/**
 * pci_enable_acs() / pci_std_enable_acs() (drivers/pci/pci.c), which Linux
 * runs on every function it scans once an IOMMU driver asked for ACS: turn
 * on whichever of Source Validation, P2P Request Redirect, P2P Completion
 * Redirect and Upstream Forwarding the function implements. (Translation
 * Blocking is only for untrusted, external-facing ports; not modelled.)
 * Returns the Control value written, or undefined without an ACS capability.
 */
export function enableAcs(cfg: ConfigAccessor, bus: number, devfn: number): number | undefined {
  const c = listCapabilities(cfg, bus, devfn).find((e) => e.kind === 'ext' && e.id === ACS.CAP_ID);
  if (c === undefined) return undefined;
  const cap = cfg.read(bus, devfn, c.offset + ACS.CAP, 2);
  const wanted = cap & REQ_ACS_FLAGS;
  const ctrl = cfg.read(bus, devfn, c.offset + ACS.CTRL, 2) | wanted;
  cfg.write(bus, devfn, c.offset + ACS.CTRL, 2, ctrl);
  return ctrl;
}

/** pci_pcie_type(): the PCIe Device/Port Type of a function, or undefined for a conventional PCI function (no PCI Express capability). */
export function pciPcieType(dev: PciFunction): number | undefined {
  const off = dev.caps.findStd(PCIE.CAP_ID);
  return off === undefined ? undefined : PCIE_REGS.get('FLAGS', dev.config.get16(off + PCIE.FLAGS), 'TYPE');
}

/** pci_dev.multifunction: the Header Type register's Multi-Function Device bit. */
export function pciMultifunction(dev: PciFunction): boolean {
  return (dev.config.get8(CFG.HEADER_TYPE) & HEADER_TYPE_MULTIFUNCTION) !== 0;
}

/**
 * pci_acs_enabled() (drivers/pci/pci.c): does the function isolate its peers
 * with the ACS controls of `flags`? Conventional PCI never does, nor a
 * PCIe-to-PCI bridge, a PCI-to-PCIe bridge or an RC event collector; root and
 * downstream ports need the controls enabled; endpoints and upstream ports
 * need them on each function of a multi-function device, and a
 * single-function one has no peers to isolate (PCIe Base 6.12.1). Device
 * quirks (pci_dev_specific_acs_enabled) are not modelled.
 */
export function pciAcsEnabled(dev: PciFunction, flags: number): boolean {
  const type = pciPcieType(dev);
  if (type === undefined) return false;
  switch (type) {
    case PCIE_TYPE_PCIE_BRIDGE:
    case PCIE_TYPE.PCI_BRIDGE:
    case PCIE_TYPE_RC_EVENT_COLLECTOR:
      return false;
    case PCIE_TYPE.DOWNSTREAM:
    case PCIE_TYPE.ROOT_PORT:
      return acsFlagsEnabled(dev.config, dev.caps, flags);
    case PCIE_TYPE.ENDPOINT:
    case PCIE_TYPE.UPSTREAM:
    case PCIE_TYPE_LEGACY_ENDPOINT:
    case PCIE_TYPE.RC_ENDPOINT:
      return pciMultifunction(dev) ? acsFlagsEnabled(dev.config, dev.caps, flags) : true;
    default:
      return true;
  }
}

/** pci_acs_path_enabled(start, NULL, flags): `start` and every bridge above it up to the root bus isolate with `flags`. */
export function pciAcsPathEnabled(start: PciFunction, flags: number): boolean {
  for (let p: PciFunction | undefined = start; p !== undefined; p = p.bus?.upstream) {
    if (!pciAcsEnabled(p, flags)) return false;
  }
  return true;
}
