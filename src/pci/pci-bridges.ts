import { PciBridge } from './bridge.ts';
import { requesterId } from './bdf.ts';
import { PcieCapability } from './caps/pcie.ts';
import type { RootComplex } from './root-complex.ts';

/** Class code of a PCI-to-PCI bridge (base 06, sub 04, prog-if 00). */
const PCI_BRIDGE_CLASS = 0x060400;

/**
 * A PCI Express to PCI/PCI-X bridge (QEMU's pcie-pci-bridge, 1b36:000e): a
 * PCIe function (device/port type 7) whose secondary bus is conventional
 * PCI. Requests from below take the requester ID of the secondary bus
 * number with device and function 0 (PCI Express to PCI/PCI-X Bridge
 * Specification 1.0 §2.3; Linux pci_for_each_dma_alias, QEMU
 * PCI_REQ_ID_SECONDARY_BUS), so the IOMMU cannot tell the devices below
 * apart: they share one IOMMU group.
 */
export class PcieToPciBridge extends PciBridge {
  readonly pcie: PcieCapability;

  constructor(host: RootComplex, name = 'pcie-pci-bridge') {
    super(name, { vendorId: 0x1b36, deviceId: 0x000e, classCode: PCI_BRIDGE_CLASS }, host);
    this.pcie = new PcieCapability(this.config, this.caps, { type: 'pci-bridge' });
  }

  override forwardedRequesterId(): number {
    return requesterId(this.secondaryBus, 0);
  }
}

/**
 * A conventional PCI-to-PCI bridge with no PCI Express capability (QEMU's
 * pci-bridge, 1b36:0001). Conventional PCI carries no requester ID, so the
 * root complex can only name the bridge: requests from below carry the
 * bridge's own BDF (QEMU pci_req_id_cache_get's legacy case; Linux's alias
 * for a non-PCIe bridge).
 */
export class ConventionalPciBridge extends PciBridge {
  constructor(host: RootComplex, name = 'pci-bridge') {
    super(name, { vendorId: 0x1b36, deviceId: 0x0001, classCode: PCI_BRIDGE_CLASS }, host);
  }

  override forwardedRequesterId(): number {
    return this.requesterId;
  }
}
