/**
 * The PCIe features the driver turns on in a device through configuration
 * space (ECAM), as Linux's drivers/pci/ats.c does: PASID (PCIe 7.8.8),
 * ATS (10.5.1: STU, Enable) and PRI (10.5.2: allocation, Enable), with the
 * register offsets of src/pci/caps.
 */
import type { HostPlatform } from '../../../src/host/platform.ts';
import { EBUSY, EINVAL } from '../../../src/uapi/errno.ts';
import { pciExtCfgAccessible } from '../../../src/host/pci-cfg-size.ts';
import { ATS, ATS_CAP, ATS_CTRL } from '../../../src/pci/caps/ats.ts';
import { PASID, PASID_CAP, PASID_CTRL } from '../../../src/pci/caps/pasid.ts';
import { PRI, PRI_CTRL, PRI_STATUS } from '../../../src/pci/caps/pri.ts';
import type { ConfigAccessor } from '../../../src/pci/enumerate.ts';
import { listCapabilities } from '../../../src/pci/lspci.ts';
import type { PciFunction } from '../../../src/pci/pci-function.ts';

/** What a device offers (read once at probe). */
export interface DevFeatures {
  pasidCap: number | undefined;
  /** Max PASID Width; 0 without the capability. */
  pasidBits: number;
  pasidExec: boolean;
  pasidPriv: boolean;
  atsCap: number | undefined;
  /** Invalidate Queue Depth (1..32). */
  atsQdep: number;
  priCap: number | undefined;
  /** Outstanding Page Request Capacity. */
  priCapacity: number;
  /** PRG Response PASID Required. */
  priPasidRequired: boolean;
}

export class PciFeatures {
  private readonly cfg: ConfigAccessor;

  constructor(board: HostPlatform) {
    this.cfg = board.pciConfig;
  }

  probe(dev: PciFunction): DevFeatures {
    const { cfg } = this;
    const bus = dev.busNumber;
    const fn = dev.devfn;
    // Behind a conventional PCI or PCIe-to-PCI bridge the kernel sees no extended capabilities at all.
    const caps = pciExtCfgAccessible(dev) ? listCapabilities(cfg, bus, fn).filter((c) => c.kind === 'ext') : [];
    const at = (id: number) => caps.find((c) => c.id === id)?.offset;
    const pasidCap = at(PASID.CAP_ID);
    const atsCap = at(ATS.CAP_ID);
    const priCap = at(PRI.CAP_ID);
    const pcap = pasidCap === undefined ? 0 : cfg.read(bus, fn, pasidCap + PASID.CAP, 2);
    const qdep = atsCap === undefined ? 0 : cfg.read(bus, fn, atsCap + ATS.CAP, 2) & ATS_CAP.QDEP;
    return {
      pasidCap,
      pasidBits: (pcap & PASID_CAP.WIDTH) >>> 8,
      pasidExec: (pcap & PASID_CAP.EXEC) !== 0,
      pasidPriv: (pcap & PASID_CAP.PRIV) !== 0,
      atsCap,
      atsQdep: qdep === 0 ? 32 : qdep,
      priCap,
      priCapacity: priCap === undefined ? 0 : cfg.read(bus, fn, priCap + PRI.MAX_REQ, 4),
      priPasidRequired: priCap !== undefined && (cfg.read(bus, fn, priCap + PRI.STATUS, 2) & PRI_STATUS.PASID_REQUIRED) !== 0,
    };
  }

  /** pci_enable_pasid(): with the execute / privileged modes the device has and the IOMMU allows. */
  enablePasid(dev: PciFunction, f: DevFeatures, allow: { exec: boolean; priv: boolean }): number {
    if (f.pasidCap === undefined) return -EINVAL;
    const ctrl = PASID_CTRL.ENABLE | (f.pasidExec && allow.exec ? PASID_CTRL.EXEC : 0) | (f.pasidPriv && allow.priv ? PASID_CTRL.PRIV : 0);
    this.cfg.write(dev.busNumber, dev.devfn, f.pasidCap + PASID.CTRL, 2, ctrl);
    return 0;
  }

  /** pci_enable_ats(): Smallest Translation Unit 4 KiB (STU 0), Enable. */
  enableAts(dev: PciFunction, f: DevFeatures): number {
    if (f.atsCap === undefined) return -EINVAL;
    this.cfg.write(dev.busNumber, dev.devfn, f.atsCap + ATS.CTRL, 2, ATS_CTRL.ENABLE);
    return 0;
  }

  disableAts(dev: PciFunction, f: DevFeatures): void {
    if (f.atsCap !== undefined) this.cfg.write(dev.busNumber, dev.devfn, f.atsCap + ATS.CTRL, 2, 0);
  }

  atsEnabled(dev: PciFunction, f: DevFeatures): boolean {
    return f.atsCap !== undefined && (this.cfg.read(dev.busNumber, dev.devfn, f.atsCap + ATS.CTRL, 2) & ATS_CTRL.ENABLE) !== 0;
  }

  /** pci_enable_pri(): the device must be stopped; allocate min(capacity, reqs) requests, Enable. */
  enablePri(dev: PciFunction, f: DevFeatures, reqs: number): number {
    if (f.priCap === undefined) return -EINVAL;
    const { cfg } = this;
    const bus = dev.busNumber;
    const fn = dev.devfn;
    const ctrl = cfg.read(bus, fn, f.priCap + PRI.CTRL, 2);
    if ((ctrl & PRI_CTRL.ENABLE) !== 0) return 0;
    if ((cfg.read(bus, fn, f.priCap + PRI.STATUS, 2) & PRI_STATUS.STOPPED) === 0) return -EBUSY;
    cfg.write(bus, fn, f.priCap + PRI.ALLOC_REQ, 4, Math.min(f.priCapacity, reqs));
    cfg.write(bus, fn, f.priCap + PRI.CTRL, 2, PRI_CTRL.ENABLE);
    return 0;
  }

  /** pci_disable_pri(), then a PRI reset so the device forgets its outstanding requests. */
  disablePri(dev: PciFunction, f: DevFeatures): void {
    if (f.priCap === undefined) return;
    this.cfg.write(dev.busNumber, dev.devfn, f.priCap + PRI.CTRL, 2, 0);
    this.cfg.write(dev.busNumber, dev.devfn, f.priCap + PRI.CTRL, 2, PRI_CTRL.RESET);
  }
}
