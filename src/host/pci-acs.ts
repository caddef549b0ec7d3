import { ACS, REQ_ACS_FLAGS } from '../pci/caps/acs.ts';
import type { ConfigAccessor } from '../pci/enumerate.ts';
import { listCapabilities } from '../pci/lspci.ts';

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
