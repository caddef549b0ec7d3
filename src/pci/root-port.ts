import { AcsCapability } from './caps/acs.ts';
import { PcieCapability } from './caps/pcie.ts';
import { PciBridge } from './bridge.ts';
import type { RootComplex } from './root-complex.ts';

export interface RootPortOptions {
  /** Implement ACS (Source Validation, Request/Completion Redirect, Upstream Forwarding), as QEMU's pcie-root-port does. */
  acs?: boolean;
}

/**
 * A PCIe root port: a type 1 function on the root bus with the PCI Express
 * capability of a Root Port (device/port type 4). Devices plugged below it
 * sit on its secondary bus; Linux puts them in their own IOMMU group only
 * when the port isolates them (ACS implemented and enabled), else they
 * share the port's group.
 */
export class PcieRootPort extends PciBridge {
  readonly pcie: PcieCapability;
  readonly acs: AcsCapability | undefined;

  constructor(host: RootComplex, name = 'root-port', opts: RootPortOptions = {}) {
    // Vendor/device as QEMU's generic pcie-root-port (1b36:000c), class PCI bridge.
    super(name, { vendorId: 0x1b36, deviceId: 0x000c, classCode: 0x060400 }, host);
    this.pcie = new PcieCapability(this.config, this.caps, { type: 'root-port' });
    if (opts.acs) this.acs = new AcsCapability(this.config, this.caps);
  }
}
